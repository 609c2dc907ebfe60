# farm render and its peers against workers: throughput, and throughput per CPU-second.
# usage: gnuplot -c throughput.gp PNG SERIES_DIR TITLE CORES XRANGE
# SERIES_DIR holds bench/report.py series' "x y" files; an empty one is a curve not measured,
# left out of the plot and its key.
t = ARG2
cores = ARG4 + 0
has(f) = system("test -s '".f."' && echo 1") eq "1"
item(f, name, style) = has(f) ? sprintf("'%s' using 1:2 with linespoints %s title '%s', ", f, style, name) : ""
unlist(s) = s[1:strlen(s) - 2]
keys = "strong weak peer_farm peer_pyo peer_supernova peer_scsynth"
array names[6] = ["farm, strong", "farm, weak", "farm, peer workload", "pyo recipe (N processes)", \
    "supernova -T N", "scsynth (1 thread)"]
array styles[6] = ["lw 2 pt 7 lc rgb '#1f77b4'", "lw 2 pt 5 lc rgb '#17becf'", \
    "lw 2 pt 9 dt 2 lc rgb '#1f77b4'", "lw 2 pt 11 lc rgb '#ff7f0e'", \
    "lw 2 pt 13 lc rgb '#2ca02c'", "lw 2 pt 15 ps 1.5 lc rgb '#d62728'"]
vps = ""
cpu = ""
do for [i = 1:6] {
    vps = vps.item(t.'/'.word(keys, i).'.vps', names[i], styles[i])
    cpu = cpu.item(t.'/'.word(keys, i).'.cpu', names[i], styles[i])
}

set terminal pngcairo noenhanced size 1400,560 font ',10'
set output ARG1
set datafile separator whitespace
set multiplot layout 1,2 title "farm render and its peers against workers: ".ARG3 font ',12'
set logscale xy 2
set logscale y 10
eval "set xrange [".ARG5."]"
set grid
set key top left font ',9'
set xlabel 'workers (pyo: processes, supernova: threads)'
set arrow from cores, graph 0 to cores, graph 1 nohead dt 3 lc rgb 'gray40'
set label 'cores' at cores, graph 0.04 offset 0.5,0 textcolor rgb 'gray40'
set ylabel 'billion voice-samples per second (wall)'
set title 'throughput'
eval "plot ".unlist(vps)
set ylabel 'billion voice-samples per CPU-second'
set title 'per core: throughput per CPU-second'
eval "plot ".unlist(cpu)
unset multiplot
