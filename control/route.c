/* Requests for voices that other farms play (--node): each node gets its part of every line,
 * in one message, and this farm applies its own part after all of them accepted. The voices
 * are global: a node plays first_voice .. first_voice + voices - 1, as its status says. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_internal.h"
#include "nodes.h"

typedef struct text_buf {
    char *data;
    size_t len, cap;
    int failed;
} text_buf;

static void put(text_buf *b, const void *bytes, size_t n) {
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void putf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(text_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(b, tmp, n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ---- who plays which voices ---- */

typedef struct owner {
    int node; /* -1: this farm */
    uint32_t first, count;
    const char *name;
} owner;

static int voice_line(const farm_request *r) {
    return (r->kind == FARM_REQ_SET || r->kind == FARM_REQ_VOICE || r->kind == FARM_REQ_GET) &&
           !r->whole_worker;
}

/* The voices of r that o plays: [*lo, *hi) within the selection's positions. */
static int share(const farm_request *r, const owner *o, uint32_t *lo, uint32_t *hi) {
    uint64_t a = r->first > o->first ? r->first : o->first;
    uint64_t b = (uint64_t)r->first + r->count, ob = (uint64_t)o->first + o->count;
    b = b < ob ? b : ob;
    if (a >= b)
        return 0;
    *lo = (uint32_t)(a - r->first);
    *hi = (uint32_t)(b - r->first);
    return 1;
}

static int owners_of(farm_control *c, owner *out, farm_node_info *infos) {
    int n = 0;
    out[n++] = (owner){-1, c->cfg->first_voice, c->cfg->total_voices, "this farm"};
    for (uint32_t k = 0; k < farm_nodes_count(c->desc.nodes); k++) {
        farm_nodes_info(c->desc.nodes, k, &infos[k]);
        if (infos[k].known && infos[k].voices > 0)
            out[n++] = (owner){(int)k, infos[k].first_voice, infos[k].voices, infos[k].name};
    }
    return n;
}

/* Every voice a line names is somebody's (all, the whole range, may span gaps between farms);
 * at BLOCK only for this farm's own. */
static int check_lines(farm_control *c, const farm_request *reqs, size_t n, const owner *owners,
                       int n_owners) {
    uint32_t all_first, all_count;
    farm_control_voice_range(c, &all_first, &all_count);
    for (size_t i = 0; i < n; i++) {
        const farm_request *r = &reqs[i];
        if (!voice_line(r))
            continue;
        int all = r->first == all_first && r->count == all_count;
        uint64_t covered = 0;
        uint32_t lo, hi;
        for (int j = 0; j < n_owners; j++)
            if (share(r, &owners[j], &lo, &hi)) {
                covered += hi - lo;
                if (owners[j].node >= 0 && r->has_at)
                    return farm_fail(FARM_EUSAGE,
                                     "at BLOCK counts this farm's blocks; node %s has its own: "
                                     "leave at out for voices on nodes",
                                     owners[j].name);
            }
        if (covered < r->count && !all)
            return farm_fail(FARM_EUSAGE,
                             "voices %u-%u: some are played by no farm known now (a node that "
                             "has not answered yet?); see status",
                             r->first, r->first + r->count - 1);
    }
    return FARM_OK;
}

/* ---- a node's part, as a message ---- */

static void put_ramp(text_buf *b, const farm_request *r) {
    if (r->ramp >= 0)
        putf(b, " ramp %.17g", r->ramp);
}

static void put_line(text_buf *b, const farm_request *r, uint32_t lo, uint32_t hi) {
    uint32_t a = r->first + lo, z = r->first + hi - 1;
    const char *param = r->get_playing ? FARM_PLAYING_NAME : farm_params[r->param].name;
    if (r->kind == FARM_REQ_GET) {
        putf(b, "get %u-%u %s", a, z, param);
        return;
    }
    if (r->kind == FARM_REQ_VOICE) {
        putf(b, "voice %u-%u %s", a, z, r->play ? "play" : "stop");
    } else if (r->form == FARM_FORM_ONE) {
        putf(b, "set %u-%u %s %.17g", a, z, param, r->value);
    } else {
        putf(b, "set %u-%u %s ", a, z, param);
        float v[256];
        for (uint32_t i = lo; i < hi; i += 256) {
            uint32_t m = hi - i < 256 ? hi - i : 256;
            farm_request_values(r, i, m, v);
            for (uint32_t j = 0; j < m; j++)
                putf(b, "%s%.9g", i + j > lo ? "," : "", (double)v[j]);
        }
    }
    put_ramp(b, r);
}

/* A single set with a value per voice travels as setv: binary, and up to FARM_RECV_MAX. */
static void put_setv(text_buf *b, const farm_request *r, uint32_t lo, uint32_t hi) {
    putf(b, "setv %u-%u %s", r->first + lo, r->first + hi - 1, farm_params[r->param].name);
    put_ramp(b, r);
    put(b, "\n", 1);
    float v[256];
    for (uint32_t i = lo; i < hi; i += 256) {
        uint32_t m = hi - i < 256 ? hi - i : 256;
        farm_request_values(r, i, m, v);
        put(b, v, m * sizeof(float)); /* little-endian, as farm runs only there */
    }
}

static int node_message(const farm_request *reqs, size_t n, const owner *o, text_buf *b) {
    int lines = 0;
    uint32_t lo, hi;
    for (size_t i = 0; i < n; i++) {
        const farm_request *r = &reqs[i];
        if (!voice_line(r) || !share(r, o, &lo, &hi))
            continue;
        if (n == 1 && r->kind == FARM_REQ_SET && r->form != FARM_FORM_ONE) {
            put_setv(b, r, lo, hi);
            return 1;
        }
        if (lines++)
            put(b, "\n", 1);
        put_line(b, r, lo, hi);
    }
    return lines;
}

/* ---- sending, then applying here ---- */

typedef struct node_reply {
    const owner *from;
    cJSON *reply;
} node_reply;

static int send_parts(farm_control *c, const farm_request *reqs, size_t n, const owner *owners,
                      int n_owners, node_reply *out, int *n_out) {
    char done[512] = "";
    size_t done_len = 0;
    *n_out = 0;
    for (int j = 1; j < n_owners; j++) {
        text_buf b = {0};
        if (!node_message(reqs, n, &owners[j], &b) || b.failed) {
            free(b.data);
            if (b.failed)
                return farm_fail(FARM_ENOMEM, "out of memory");
            continue;
        }
        char *text = NULL;
        int rv = farm_nodes_send(c->desc.nodes, (uint32_t)owners[j].node, b.data, b.len, &text);
        free(b.data);
        cJSON *reply = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (rv == FARM_OK && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok"))) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
            rv = farm_fail(FARM_EFAIL, "node %s refused: %s", owners[j].name,
                           cJSON_IsString(e) ? e->valuestring : "(no reply)");
        }
        if (rv != FARM_OK) {
            cJSON_Delete(reply);
            char why[400];
            snprintf(why, sizeof why, "%s", farm_error_message());
            return farm_fail(FARM_EFAIL, "%s; not applied on this farm%s%s", why,
                             done_len ? "; already applied on node " : "", done);
        }
        done_len += (size_t)snprintf(done + done_len, sizeof done - done_len, "%s%s",
                                     done_len ? ", " : "", owners[j].name);
        if (done_len >= sizeof done)
            done_len = sizeof done - 1;
        out[(*n_out)++] = (node_reply){&owners[j], reply};
    }
    return FARM_OK;
}

/* This farm's part of each line; spreads and lists become values of its own voices. */
static size_t local_part(const farm_request *reqs, size_t n, const owner *self, farm_request *out,
                         float **values) {
    size_t m = 0;
    uint32_t lo, hi;
    for (size_t i = 0; i < n; i++) {
        const farm_request *r = &reqs[i];
        if (!voice_line(r)) {
            out[m++] = *r;
            continue;
        }
        if (!share(r, self, &lo, &hi))
            continue;
        farm_request p = *r;
        p.first = r->first + lo;
        p.count = hi - lo;
        if (r->kind == FARM_REQ_SET && r->form != FARM_FORM_ONE) {
            float *v = malloc((size_t)p.count * sizeof(float));
            if (v == NULL)
                return SIZE_MAX;
            farm_request_values(r, lo, p.count, v);
            values[m] = v;
            p.form = FARM_FORM_VECTOR;
            p.vector = (const unsigned char *)v;
        }
        out[m++] = p;
    }
    return m;
}

/* Places one owner's get values (from its first voice on) among all of them. */
static void place(cJSON *all, const farm_request *r, const cJSON *piece) {
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(piece, "first");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(piece, "values");
    if (!cJSON_IsNumber(first) || !cJSON_IsArray(values))
        return;
    int at = (int)first->valuedouble - (int)r->first, i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, values) {
        if (at + i >= 0 && (uint32_t)(at + i) < r->count)
            cJSON_ReplaceItemInArray(all, at + i, cJSON_Duplicate(v, 1));
        i++;
    }
}

/* get: the values of every owner, in voice order, as if one farm answered. */
static void merge_get(const farm_request *r, cJSON *reply, node_reply *replies, int n_replies) {
    cJSON *all = cJSON_CreateArray();
    for (uint32_t v = 0; v < r->count; v++)
        cJSON_AddItemToArray(all, cJSON_CreateNull());
    place(all, r, reply);
    for (int j = 0; j < n_replies; j++)
        place(all, r, replies[j].reply);
    cJSON_DeleteItemFromObject(reply, "param");
    cJSON_DeleteItemFromObject(reply, "first");
    cJSON_DeleteItemFromObject(reply, "values");
    cJSON_AddStringToObject(reply, "param",
                            r->get_playing ? FARM_PLAYING_NAME : farm_params[r->param].name);
    cJSON_AddNumberToObject(reply, "first", r->first);
    cJSON_AddItemToObject(reply, "values", all);
}

static void add_node_replies(cJSON *reply, node_reply *replies, int n_replies) {
    cJSON *arr = cJSON_AddArrayToObject(reply, "nodes");
    for (int j = 0; j < n_replies; j++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", replies[j].from->name);
        cJSON_AddItemToObject(o, "reply", replies[j].reply);
        replies[j].reply = NULL;
        cJSON_AddItemToArray(arr, o);
    }
}

int farm_control_reaches_nodes(farm_control *c, const farm_request *reqs, size_t n) {
    if (farm_nodes_count(c->desc.nodes) == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (voice_line(&reqs[i]) && (reqs[i].first < c->cfg->first_voice ||
                                     (uint64_t)reqs[i].first + reqs[i].count >
                                         (uint64_t)c->cfg->first_voice + c->cfg->total_voices))
            return 1;
    return 0;
}

static int run_here(farm_control *c, const farm_request *reqs, size_t n, const owner *self,
                    cJSON *reply) {
    farm_request *mine = calloc(n, sizeof *mine);
    float **values = calloc(n, sizeof *values);
    size_t m = mine && values ? local_part(reqs, n, self, mine, values) : SIZE_MAX;
    int rv = m == SIZE_MAX ? farm_fail(FARM_ENOMEM, "out of memory")
             : m > 0       ? farm_control_run_message(c, mine, m, reply)
                           : FARM_OK;
    for (size_t i = 0; values && i < n; i++)
        free(values[i]);
    free(values);
    free(mine);
    return rv;
}

int farm_control_route(farm_control *c, const farm_request *reqs, size_t n, cJSON *reply) {
    uint32_t count = farm_nodes_count(c->desc.nodes);
    farm_node_info *infos = calloc(count + 1, sizeof *infos);
    owner *owners = calloc(count + 1, sizeof *owners);
    node_reply *replies = calloc(count + 1, sizeof *replies);
    int n_replies = 0, rv;
    if (infos == NULL || owners == NULL || replies == NULL) {
        rv = farm_fail(FARM_ENOMEM, "out of memory");
        goto out;
    }
    int n_owners = owners_of(c, owners, infos);
    if ((rv = check_lines(c, reqs, n, owners, n_owners)) != FARM_OK ||
        (rv = send_parts(c, reqs, n, owners, n_owners, replies, &n_replies)) != FARM_OK)
        goto out;
    if ((rv = run_here(c, reqs, n, &owners[0], reply)) != FARM_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", farm_error_message());
        /* not FARM_EBUSY: trying the message again would send the nodes' parts again */
        rv = farm_fail(rv == FARM_EBUSY ? FARM_EFAIL : rv, "%s (the nodes' parts were applied)",
                       why);
        goto out;
    }
    if (n == 1 && reqs[0].kind == FARM_REQ_GET)
        merge_get(&reqs[0], reply, replies, n_replies);
    add_node_replies(reply, replies, n_replies);
out:
    for (int j = 0; j < n_replies; j++)
        cJSON_Delete(replies[j].reply);
    free(replies);
    free(owners);
    free(infos);
    return rv;
}
