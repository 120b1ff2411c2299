/*
 * kube_evidence_internal.h - what kube_evidence.c (the gathering: lifetime,
 * requests, sections, start), kube_evidence_take.c (each answer taken in and
 * what it leads to ask next) and kube_evidence_trim.c (pure trimming of
 * objects, events and logs) share. Not part of the module's public surface
 * (kube_evidence.h is).
 */
#ifndef TR_KUBE_EVIDENCE_INTERNAL_H
#define TR_KUBE_EVIDENCE_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "buf.h"
#include "http_client.h"
#include "kube_evidence.h"
#include "redact.h"

/* "Kind/name" lines: names are DNS subdomains (253 bytes), kinds short. */
#define TR_KE_NAME_LINE 330

const char *ke_str(const cJSON *obj, const char *key);
/* obj.a.b.c, any of b and c NULL to stop earlier; NULL when absent. */
const cJSON *ke_path(const cJSON *obj, const char *a, const char *b, const char *c);

/* New trimmed copies (caller frees with cJSON_Delete), NULL without memory. */
cJSON *ke_trim_object(const char *kind, const cJSON *object);
cJSON *ke_trim_pod_spec(const cJSON *spec);
cJSON *ke_trim_container_status(const cJSON *status);
cJSON *ke_trim_event(const cJSON *event);

/* 1 when tr_kube_object_path knows kind (alt: and an older API version of it). */
int ke_kind_known(const char *kind, int alt);

/* Append "Kind/name" of each owner reference of object to chain. */
int ke_owner_chain(cJSON *chain, const cJSON *object);


typedef enum req_kind {
    REQ_OBJECT,
    REQ_OBJECT_ALT,
    REQ_EVENTS,
    REQ_POD,
    REQ_POD_LIST,
    REQ_NODE,
    REQ_LOG_PREVIOUS,
    REQ_LOG_CURRENT,
} req_kind;

typedef struct request {
    tr_kube_gathering *g;
    struct request *next;
    req_kind kind;
    char *path;
    char *pod;
    char *container;
    tr_http_call *call;
} request;

struct tr_kube_evidence {
    uv_loop_t *loop;
    tr_kube_client *client;
    tr_http_client *http;
    tr_kube_evidence_options opt;
    tr_kube_gathering *head;   /* gatherings whose callback is still due */
    size_t alive;              /* gatherings not yet freed */
    int closing;
};

struct tr_kube_gathering {
    tr_kube_evidence *ev;
    tr_kube_gathering *prev, *next;
    char *ns, *kind, *name, *container;
    cJSON *fact_pods;          /* names from facts.pods */
    tr_kube_evidence_cb cb;
    void *userdata;
    request *requests;         /* in flight */
    size_t calls_made;
    uv_timer_t deadline;
    int timer_open;
    int waiting_auth;
    tr_redact_ctx *redact;     /* one numbering for the whole bundle: log and spec agree */
    int done;                  /* callback delivered, or cancelled */
    int node_asked;
    cJSON *sections;           /* section name -> value, built as answers come */
    cJSON *pod_names;          /* pods taken (dedup, cap) */
    cJSON *event_uids;
};

/* kube_evidence.c */

/* The array under name in g's sections, created when absent; NULL without memory. */
cJSON *ke_section_array(tr_kube_gathering *g, const char *name);

/* Record what could not be read (bounded), redacted like the rest. */
void ke_note(tr_kube_gathering *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Redact item and append it to the section array (item is consumed). */
int ke_keep(tr_kube_gathering *g, const char *section, cJSON *item);

/* GET path for g within its call budget (MAX_CALLS); failures go to not_collected. */
void ke_ask(tr_kube_gathering *g, req_kind kind, tr_buf *path, const char *pod,
            const char *container);

/* The events of the object kind/name in g's namespace. */
void ke_ask_events(tr_kube_gathering *g, const char *kind, const char *name);

/* The current or previous log of one container of pod (see the definition for the sizes). */
void ke_ask_log(tr_kube_gathering *g, const char *pod, const char *container, int previous);

/* The object obj_kind/name (alt: its older API version). */
void ke_ask_object(tr_kube_gathering *g, req_kind kind, const char *obj_kind,
                   const char *name, int alt);

/* kube_evidence_take.c */

/* Take in the answer to r: trim, redact and keep it, and ask what it leads to. */
void ke_take_answer(tr_kube_gathering *g, request *r, const tr_http_response *resp);

#endif
