/*
 * reply.h - what comes back from an OpenAI-compatible server, parsed and
 * checked: the chat completion envelope (content, usage, finish_reason), the
 * error envelope, and the analysis the model was asked for inside the
 * content.
 *
 * The analysis parser is forgiving about packaging and strict about
 * content: it finds the JSON object inside code fences or prose, then
 * requires every field with its type and range, so a model that "almost"
 * answers gets a precise error naming the field (the analysis stage sends
 * that error back to the model once). Everything returned is owned by the
 * caller and released with the matching _free/_dispose.
 */
#ifndef TR_LLM_REPLY_H
#define TR_LLM_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Caps on what a reply may carry; zero fields take the defaults. */
typedef struct tr_llm_reply_limits {
    size_t max_patch_lines; /* [200] */
    size_t max_patch_bytes; /* [65536] */
    size_t max_items;       /* [20] entries of evidence / remediation */
    size_t max_item_bytes;  /* [2000] per entry */
    size_t max_text_bytes;  /* [8192] summary and root_cause */
} tr_llm_reply_limits;

typedef struct tr_llm_reply {
    char *summary;
    char *root_cause;
    char *severity;          /* "info" | "warning" | "error" | "critical" */
    double confidence;       /* 0..1 */
    char *evidence_json;     /* JSON array of strings, as stored */
    char *remediation_json;  /* JSON array of strings, as stored */
    size_t evidence_count;
    size_t remediation_count;
    char *patch;             /* "" when the model proposes none */
} tr_llm_reply;

/*
 * Find and validate the analysis object in content[0..len) (the assistant
 * message). On success *out is owned by the caller (tr_llm_reply_free). On
 * failure TR_EPARSE (no JSON object) or TR_EINVAL (a field is missing or
 * wrong), with a message naming the field, e.g.
 * `field "confidence": must be a number from 0 to 1 (got 1.5)`.
 */
int tr_llm_reply_parse(tr_llm_reply **out, const char *content, size_t len,
                       const tr_llm_reply_limits *limits, tr_error *err);
void tr_llm_reply_free(tr_llm_reply *reply);

/* The JSON schema (strict) of the analysis object, for response_format. */
const char *tr_llm_reply_schema(void);

/* A chat completion (non-streaming) as the adapter needs it. */
typedef struct tr_llm_completion {
    char *content;        /* choices[0].message.content; never NULL on success */
    char *finish_reason;  /* may be NULL */
    char *model;          /* the model the server says it used; may be NULL */
    int64_t prompt_tokens;
    int64_t completion_tokens;
} tr_llm_completion;

/*
 * Parse a 2xx body. On success out's strings are owned by the caller
 * (tr_llm_completion_dispose). TR_EPARSE for a body that is not a chat
 * completion (the message says what is missing); TR_EINVAL when the model
 * refused (message.refusal) or returned no content.
 */
int tr_llm_completion_parse(tr_llm_completion *out, const char *body, size_t len,
                            tr_error *err);
void tr_llm_completion_dispose(tr_llm_completion *completion);

/*
 * The error envelope {"error":{"message","type","code"}} (OpenAI, Azure,
 * llama.cpp, OpenRouter: code may be a string or a number). Fields are
 * copied into the fixed buffers, "" when absent. Returns 0, or TR_EPARSE
 * when the body has no such envelope.
 */
typedef struct tr_llm_error_info {
    char message[512];
    char type[64];
    char code[64];
} tr_llm_error_info;

int tr_llm_error_parse(tr_llm_error_info *out, const char *body, size_t len);

#endif
