# How the cost grows with the work (one worker, offline), and the coordinator's mix per callback.
# usage: gnuplot -c cost.gp PNG SERIES_DIR TITLE "MIX_FRAMES ..."
# A panel whose curves this run did not measure stays empty, in its place.
t = ARG2
has(f) = system("test -s '".f."' && echo 1") eq "1"
item(f, name, style) = has(f) ? sprintf("'%s' using 1:2 with linespoints %s title '%s', ", f, style, name) : ""
unlist(s) = s[1:strlen(s) - 2]
p1 = item(t."/c_voices", "rendering (marginal)", "lw 2 pt 7 lc rgb '#1f77b4'"). \
     item(t."/c_voices_all", "with start-up and exit", "lw 1 pt 6 dt 2 lc rgb 'gray30'")
p2 = item(t."/c_frames", "sineloop, 10,000 voices", "lw 2 pt 7 lc rgb '#1f77b4'")
p3 = item(t."/c_ch_sineloop", "sineloop", "lw 2 pt 7 lc rgb '#1f77b4'"). \
     item(t."/c_ch_sine", "sine", "lw 2 pt 5 lc rgb '#ff7f0e'")
p4 = ""
do for [f in ARG4] {
    p4 = p4.item(t."/mix".f, f." frames", "lw 2 pt 7")
}
panel(items) = strlen(items) ? "plot ".unlist(items) : "set multiplot next"

set terminal pngcairo noenhanced size 1200,900 font ',10'
set output ARG1
set multiplot layout 2,2 title "How the cost grows with the work (one worker, offline; CPU ns per voice-sample): ".ARG3 font ',12'
set grid
set key top right font ',9'
set ylabel 'CPU ns per voice-sample'
set logscale x 10
set logscale y 10
set xlabel 'voices per worker (256 frames, stereo)'
set title 'voice count'
eval panel(p1)
unset logscale y
set logscale x 2
set yrange [0:*]
set xlabel 'frames per block (10,000 voices)'
set title 'block size'
eval panel(p2)
set xlabel 'channels (10,000 voices, 256 frames)'
set title 'channels and oscillator'
eval panel(p3)
set xlabel 'workers mixed'
set ylabel 'microseconds per callback'
set title "the coordinator's farm_mix per callback"
set key top left
eval panel(p4)
unset multiplot
