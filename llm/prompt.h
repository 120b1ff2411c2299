/*
 * prompt.h - the prompt templates (the .md files of prompts/) and their filling.
 *
 * Templates are files, not strings in the binary, so operators can read and
 * change what is sent: system.md, kubernetes.md, terraform.md and chat.md in
 * llm.prompts_dir (default "./prompts"). All four must be there at startup;
 * a missing or unreadable one, or one naming an unknown {{placeholder}}, is
 * a startup error naming the file.
 *
 * Each analysis stores the SHA-256 of the templates it used, so a reviewer
 * can tell which wording produced an answer. A tr_prompts owns the texts.
 */
#ifndef TR_LLM_PROMPT_H
#define TR_LLM_PROMPT_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

typedef enum tr_prompt_kind {
    TR_PROMPT_SYSTEM = 0,
    TR_PROMPT_KUBERNETES,
    TR_PROMPT_TERRAFORM,
    TR_PROMPT_CHAT,
    TR_PROMPT_COUNT,
} tr_prompt_kind;

#define TR_PROMPT_MAX_BYTES ((size_t)64 * 1024)

typedef struct tr_prompts tr_prompts;

typedef struct tr_prompt_var {
    const char *name;  /* without braces: "evidence" */
    const char *value; /* NULL renders as "" */
} tr_prompt_var;

/*
 * Load the four templates from dir. On success *out is owned by the caller
 * (tr_prompts_free); on failure TR_ECONFIG (missing, unreadable, too big,
 * unknown placeholder) or TR_ENOMEM, with the path in the message.
 */
int tr_prompts_load(tr_prompts **out, const char *dir, tr_error *err);
void tr_prompts_free(tr_prompts *prompts);

/* The template text (borrowed). */
const char *tr_prompts_text(const tr_prompts *prompts, tr_prompt_kind kind);

/*
 * Lowercase hex SHA-256 (64 chars, borrowed) identifying the wording used
 * for kind: for TR_PROMPT_SYSTEM the system template alone, for the others
 * system.md + NUL + the kind's template (both are sent together).
 */
const char *tr_prompts_hash(const tr_prompts *prompts, tr_prompt_kind kind);

/*
 * Append the template with every {{name}} replaced by its value to out.
 * Placeholders without a var render as "". Returns 0, TR_ETOOBIG, TR_ENOMEM.
 */
int tr_prompts_render(const tr_prompts *prompts, tr_prompt_kind kind, const tr_prompt_var *vars,
                      size_t var_count, tr_buf *out);

/* Lowercase hex SHA-256 of data into hex (65 bytes with the NUL). */
void tr_prompt_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
