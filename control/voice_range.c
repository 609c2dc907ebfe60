/* The voices requests may name: this farm's and those of its nodes known now (nodes.h). */
#include "control_internal.h"
#include "nodes.h"

void farm_control_voice_range(farm_control *c, uint32_t *first, uint32_t *count) {
    uint64_t lo = c->cfg->first_voice, end = lo + c->cfg->total_voices;
    for (uint32_t k = 0; k < farm_nodes_count(c->desc.nodes); k++) {
        farm_node_info in;
        farm_nodes_info(c->desc.nodes, k, &in);
        if (!in.known || in.voices == 0)
            continue;
        lo = in.first_voice < lo ? in.first_voice : lo;
        end =
            (uint64_t)in.first_voice + in.voices > end ? (uint64_t)in.first_voice + in.voices : end;
    }
    *first = (uint32_t)lo;
    *count = (uint32_t)(end - lo);
}

uint32_t farm_control_total_voices(farm_control *c) {
    uint64_t total = c->cfg->total_voices;
    for (uint32_t k = 0; k < farm_nodes_count(c->desc.nodes); k++) {
        farm_node_info in;
        farm_nodes_info(c->desc.nodes, k, &in);
        total += in.known ? in.voices : 0;
    }
    return total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
}
