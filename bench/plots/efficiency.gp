# Scaling efficiency of farm and its peers against workers.
# usage: gnuplot -c efficiency.gp PNG SERIES_DIR TITLE CORES XRANGE (as throughput.gp)
t = ARG2
cores = ARG4 + 0
has(f) = system("test -s '".f."' && echo 1") eq "1"
item(f, name, style) = has(f) ? sprintf("'%s' using 1:2 with linespoints %s title '%s', ", f, style, name) : ""
unlist(s) = s[1:strlen(s) - 2]
# Not the peer workload's farm or scsynth: one is farm again, the other has one thread only.
keys = "strong weak peer_pyo peer_supernova"
array names[4] = ["farm, strong", "farm, weak", "pyo recipe (N processes)", "supernova -T N"]
array styles[4] = ["lw 2 pt 7 lc rgb '#1f77b4'", "lw 2 pt 5 lc rgb '#17becf'", \
    "lw 2 pt 11 lc rgb '#ff7f0e'", "lw 2 pt 13 lc rgb '#2ca02c'"]
eff = ""
do for [i = 1:4] {
    eff = eff.item(t.'/'.word(keys, i).'.eff', names[i], styles[i])
}

set terminal pngcairo noenhanced size 900,560 font ',10'
set output ARG1
set title "Scaling efficiency (throughput / (workers x throughput at 1)): ".ARG3 font ',11'
set logscale x 2
eval "set xrange [".ARG5."]"
set grid
set key bottom left font ',9'
set yrange [0:1.2]
set xlabel 'workers (pyo: processes, supernova: threads)'
set ylabel 'efficiency'
set arrow from cores, graph 0 to cores, graph 1 nohead dt 3 lc rgb 'gray40'
set label 'cores' at cores, graph 0.04 offset 0.5,0 textcolor rgb 'gray40'
eval "plot 0.9 with lines dt 2 lc rgb 'gray30' title 'target 0.9'".(strlen(eff) ? ", ".unlist(eff) : "")
