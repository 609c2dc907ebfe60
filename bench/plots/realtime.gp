# Real-time capacity against workers: the largest voice count, and its share of the offline
# throughput; one curve per block size and ring depth.
# usage: gnuplot -c realtime.gp PNG SERIES_DIR TITLE XRANGE BACKEND "FRAMES:RING ..."
# Draws nothing when no count was found at all.
t = ARG2
has(f) = system("test -s '".f."' && echo 1") eq "1"
item(f, name, style) = has(f) ? sprintf("'%s' using 1:2 with linespoints %s title '%s', ", f, style, name) : ""
unlist(s) = s[1:strlen(s) - 2]
array colors[4] = ["'#1f77b4'", "'#ff7f0e'", "'#2ca02c'", "'#d62728'"]
voices = ""
ratios = ""
offline = ""
n = 0
do for [fr in ARG6] {
    f = fr[1:strstrt(fr, ":") - 1]
    ring = fr[strstrt(fr, ":") + 1:]
    k = t."/rt".f.".".ring
    label = f." frames, ring of ".ring
    voices = voices.item(k.".voices", "real time, ".label, "lw 2 pt 7 lc rgb ".colors[n % 4 + 1])
    if (n == 0) {
        offline = item(k.".offline", "offline: per CPU-second x cores used, / 48 kHz", "lw 1 dt 2 pt 1 lc rgb 'gray30'")
    }
    ratios = ratios.item(k.".ratio", label, "lw 2 pt 7 lc rgb ".colors[n % 4 + 1])
    n = n + 1
}
if (strlen(voices) == 0) {
    exit
}
voices = voices.offline

set terminal pngcairo noenhanced size 1400,560 font ',10'
set output ARG1
set multiplot layout 1,2 title "Real-time capacity, no late block (".ARG5.", 48 kHz): ".ARG3 font ',12'
set logscale x 2
eval "set xrange [".ARG4."]"
set grid
set key top left font ',9'
set xlabel 'workers'
set ylabel 'voices'
set format y '%.0f'
set yrange [0:*]
set title 'largest total voice count'
eval "plot ".unlist(voices)
set ylabel 'real-time capacity / offline throughput'
set format y '%g'
set yrange [0:1.2]
set title 'share of the offline throughput kept in real time'
eval "plot 0.6 with lines dt 2 lc rgb 'gray30' title 'target at 64 frames: 0.6'".(strlen(ratios) ? ", ".unlist(ratios) : "")
unset multiplot
