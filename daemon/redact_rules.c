/*
 * redact_rules.c - the detectors of redact.c. Each looks at one position
 * and either claims a span or not. Every scan from one position is bounded
 * (names, token runs, look-behind), or consumes what it scans (a PEM block
 * runs to its END line, and scanning resumes there), so a pass over the
 * input stays linear in practice even on hostile input.
 */
#include "redact_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_BYTES 256
#define RUN_MAX_BYTES 1024
#define LOOKBEHIND_BYTES 300
#define ENTROPY_MIN_LEN 20
#define WORDLIKE_PIECE_LEN 3.4 /* mean piece length of identifiers made of words */

/*
 * First-byte dispatch: which rules can claim a span starting at a byte.
 * Each rule below opens with a fixed prefix or a character class, so a
 * rule whose bit is clear for in[i] is known to fail there without being
 * tried; rd_next_start skips every byte with no rule that applies (inside
 * words, whitespace, most punctuation), which is where the time went.
 */
#define R_PLACEHOLDER 0x001 /* '<' '[' (the scan loop's own check) */
#define R_PEM 0x002         /* "-----BEGIN " */
#define R_URL 0x004         /* "://" */
#define R_JWT 0x008         /* "eyJ" */
#define R_PREFIXED 0x010    /* sk- rk_ pk_ gh?_ github_pat_ glpat- AIza xapp- xox? hooks. AKIA.. */
#define R_BEARER 0x020      /* bearer / basic, any case */
#define R_ASSIGN 0x040      /* a name: letter or '_' */
#define R_ENV 0x080         /* "value" */
#define R_ENTROPY 0x100     /* a base64 run */
#define R_WORD 0x200        /* alnum or '_': what makes the next byte not a token start */
#define R_NAME 0x400        /* a name char: word, '-' or '.' */
#define R_ALNUM 0x800       /* letter or digit */
#define R_ALL 0x1ff
#define R_ANYWHERE (R_PLACEHOLDER | R_PEM | R_URL) /* tried at token starts and inside */

#define IS_LOWER(c) ((c) >= 'a' && (c) <= 'z')
#define IS_UPPER(c) ((c) >= 'A' && (c) <= 'Z')
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_WORD(c) (IS_LOWER(c) || IS_UPPER(c) || IS_DIGIT(c) || (c) == '_')
#define RULES(c)                                                                             \
    (((c) == '<' || (c) == '[' ? R_PLACEHOLDER : 0) | ((c) == '-' ? R_PEM : 0) |                \
     ((c) == ':' ? R_URL : 0) | ((c) == 'e' ? R_JWT : 0) |                                      \
     ((c) == 's' || (c) == 'r' || (c) == 'p' || (c) == 'g' || (c) == 'A' || (c) == 'x' ||       \
              (c) == 'h'                                                                        \
          ? R_PREFIXED                                                                          \
          : 0) |                                                                                \
     ((c) == 'b' || (c) == 'B' ? R_BEARER : 0) |                                                \
     (IS_LOWER(c) || IS_UPPER(c) || (c) == '_' ? R_ASSIGN : 0) | ((c) == 'v' ? R_ENV : 0) |     \
     (IS_WORD(c) || (c) == '-' || (c) == '+' || (c) == '/' ? R_ENTROPY : 0) |                   \
     (IS_WORD(c) ? R_WORD : 0) | (IS_WORD(c) || (c) == '-' || (c) == '.' ? R_NAME : 0) |        \
     (IS_WORD(c) && (c) != '_' ? R_ALNUM : 0))
#define ROW(c)                                                                                 \
    RULES((c) + 0), RULES((c) + 1), RULES((c) + 2), RULES((c) + 3), RULES((c) + 4),           \
        RULES((c) + 5), RULES((c) + 6), RULES((c) + 7), RULES((c) + 8), RULES((c) + 9),       \
        RULES((c) + 10), RULES((c) + 11), RULES((c) + 12), RULES((c) + 13), RULES((c) + 14),  \
        RULES((c) + 15)

/* Bytes >= 0x80 start no rule (the classes above are ASCII). */
static const unsigned short rule_table[256] = {
    ROW(0x00), ROW(0x10), ROW(0x20), ROW(0x30), ROW(0x40), ROW(0x50), ROW(0x60), ROW(0x70),
};

static int has_class(char c, unsigned bits)
{
    return (rule_table[(unsigned char)c] & bits) != 0;
}

/* ASCII only, whatever the locale: the dispatch table is built from the same classes. */
static int is_alnum(char c)
{
    return has_class(c, R_ALNUM);
}

static int is_alpha(char c)
{
    return has_class(c, R_ALNUM) && !IS_DIGIT(c);
}

static int is_word(char c)
{
    return has_class(c, R_WORD);
}

static int is_b64url(char c)
{
    return has_class(c, R_WORD) || c == '-';
}

static int is_b64any(char c)
{
    return has_class(c, R_ENTROPY);
}

static int is_token_char(char c)
{
    return is_alnum(c) || strchr("-._~+/=", c) != NULL;
}

static int is_upper_alnum(char c)
{
    return isupper((unsigned char)c) || isdigit((unsigned char)c);
}

static int is_name_char(char c)
{
    return has_class(c, R_NAME);
}

static int starts_with(const char *in, size_t len, size_t i, const char *prefix)
{
    size_t n = strlen(prefix);

    return len - i >= n && memcmp(in + i, prefix, n) == 0;
}

/* ASCII case folding, as strncasecmp does in the C locale, without a call per byte. */
static char fold(char c)
{
    return IS_UPPER(c) ? (char)(c - 'A' + 'a') : c;
}

/* s[0..n) equals lower-case word[0..n), ignoring case. */
static int same_ci(const char *s, const char *word, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fold(s[i]) != word[i])
            return 0;
    return 1;
}

static int starts_with_ci(const char *in, size_t len, size_t i, const char *prefix)
{
    size_t n = strlen(prefix);

    return len - i >= n && same_ci(in + i, prefix, n); /* prefix is lower case */
}

/* Length of the run at in[i] of chars in the classes bits, at most cap (no call per char). */
static size_t class_run(const char *in, size_t len, size_t i, unsigned bits, size_t cap)
{
    size_t n = 0, room = i >= len ? 0 : len - i < cap ? len - i : cap;

    while (n < room && (rule_table[(unsigned char)in[i + n]] & bits))
        n++;
    return n;
}

/* Length of the run at in[i] of chars accepted by pred, at most cap. */
static size_t run_len(const char *in, size_t len, size_t i, int (*pred)(char), size_t cap)
{
    size_t n = 0;

    while (i + n < len && n < cap && pred(in[i + n]))
        n++;
    return n;
}

static int set(rd_match *m, size_t start, size_t end, tr_redact_kind kind)
{
    m->start = start;
    m->end = end;
    m->kind = kind;
    return 1;
}

int rd_placeholder_at(const char *in, size_t len, size_t i, size_t *end, unsigned long *number)
{
    size_t j, digits;

    if (starts_with(in, len, i, "<redacted:")) {
        j = i + 10;
        digits = run_len(in, len, j, is_upper_alnum, 10);
        *number = 0;
        for (size_t k = 0; k < digits; k++) {
            if (!isdigit((unsigned char)in[j + k]))
                return 0;
            *number = *number * 10 + (unsigned long)(in[j + k] - '0');
        }
        if (digits == 0 || digits > 9 || j + digits >= len || in[j + digits] != '>')
            return 0;
        *end = j + digits + 1;
        return 1;
    }
    if (starts_with(in, len, i, "[REDACTED")) {
        for (j = i + 9; j < len && j < i + 64; j++) {
            if (in[j] == ']') {
                *end = j + 1;
                *number = 0;
                return 1;
            }
            if (!is_word(in[j]) && in[j] != ':')
                return 0;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ names */

/* Needles are lower case. */
static int contains_ci(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= len; i++)
        if (fold(s[i]) == needle[0] && same_ci(s + i, needle, n))
            return 1;
    return 0;
}

static int ends_with_ci(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return len >= n && same_ci(s + len - n, suffix, n);
}

static int equals_ci(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && same_ci(s, word, len);
}

/* A lower-case literal and its length. */
typedef struct lit {
    const char *s;
    size_t n;
} lit;
#define LIT(text) { text, sizeof(text) - 1 }

/* 1 when s holds one of the lower-case needles: one pass, each needle tried where its
 * first letter is. */
static int contains_any_ci(const char *s, size_t len, const lit *needles, size_t count)
{
    uint32_t firsts = 0; /* letters some needle starts with */

    for (size_t k = 0; k < count; k++)
        firsts |= 1u << (needles[k].s[0] - 'a');
    for (size_t i = 0; i < len; i++) {
        char c = fold(s[i]);

        if (!IS_LOWER(c) || !(firsts >> (c - 'a') & 1))
            continue;
        for (size_t k = 0; k < count; k++)
            if (needles[k].s[0] == c && len - i >= needles[k].n &&
                same_ci(s + i, needles[k].s, needles[k].n))
                return 1;
    }
    return 0;
}

int tr_redact_name_is_secret(const char *name, size_t len)
{
    /* Names of secrets, counts of tokens, and key names are not secrets. */
    static const char *const not_secret_suffix[] = {
        "name", "names", "ref", "kind", "tokens", "count", "budget", "_env", "_file", "_path",
    };
    static const char *const not_secret[] = {
        "missing_key", "public_key", "primary_key", "sort_key", "partition_key",
        "foreign_key", "cache_key", "idempotency_key",
    };
    static const lit secret_part[] = { /* lower case, each starting with a letter */
        LIT("token"), LIT("password"), LIT("passwd"), LIT("secret"), LIT("credential"),
        LIT("apikey"), LIT("api_key"), LIT("private_key"), LIT("authorization"),
        LIT("access_key"), LIT("accountkey"), LIT("sharedaccesskey"),
        LIT("sharedaccesssignature"),
    };
    static const char *const secret_exact[] = { "pwd", "pass", "sig" };
    int secret = 0;

    if (name == NULL || len == 0)
        return 0;
    /* Most names are not secret: the (cheaper) positive test goes first, the exceptions after. */
    secret = contains_any_ci(name, len, secret_part, sizeof(secret_part) / sizeof(secret_part[0]));
    for (size_t i = 0; !secret && len <= 4 && i < sizeof(secret_exact) / sizeof(secret_exact[0]);
         i++)
        secret = equals_ci(name, len, secret_exact[i]);
    /* *_key, *-key, *.key */
    secret = secret || (len >= 4 && same_ci(name + len - 3, "key", 3) &&
                        (name[len - 4] == '_' || name[len - 4] == '-' || name[len - 4] == '.'));
    if (!secret)
        return 0;
    for (size_t i = 0; i < sizeof(not_secret) / sizeof(not_secret[0]); i++)
        if (equals_ci(name, len, not_secret[i]))
            return 0;
    for (size_t i = 0; i < sizeof(not_secret_suffix) / sizeof(not_secret_suffix[0]); i++)
        if (ends_with_ci(name, len, not_secret_suffix[i]))
            return 0;
    return 1;
}

tr_redact_kind rd_kind_for_name(const char *name, size_t len)
{
    if (contains_ci(name, len, "secret_access_key") || contains_ci(name, len, "secretaccesskey"))
        return TR_REDACT_AWS_SECRET_KEY;
    if (contains_ci(name, len, "private_key"))
        return TR_REDACT_GCP_SERVICE_ACCOUNT;
    if (contains_ci(name, len, "accountkey") || contains_ci(name, len, "sharedaccess") ||
        equals_ci(name, len, "sig"))
        return TR_REDACT_AZURE;
    if (contains_ci(name, len, "authorization"))
        return TR_REDACT_AUTHORIZATION;
    if (contains_ci(name, len, "pass") || contains_ci(name, len, "pwd"))
        return TR_REDACT_PASSWORD;
    if (contains_ci(name, len, "token"))
        return TR_REDACT_TOKEN;
    return TR_REDACT_SECRET;
}

/* ------------------------------------------------------------ shapes */

/* -----BEGIN X----- through its END line, whatever lies between (log prefixes too). */
static int match_pem(const char *in, size_t len, size_t i, rd_match *m)
{
    if (!starts_with(in, len, i, "-----BEGIN "))
        return 0;
    for (size_t j = i + 11; j + 9 <= len; j++) {
        if (memcmp(in + j, "-----END ", 9) != 0)
            continue;
        for (size_t k = j + 9; k + 5 <= len && k < j + 9 + 128; k++)
            if (memcmp(in + k, "-----", 5) == 0)
                return set(m, i, k + 5, TR_REDACT_PRIVATE_KEY);
        return set(m, i, len, TR_REDACT_PRIVATE_KEY);
    }
    return set(m, i, len, TR_REDACT_PRIVATE_KEY); /* a cut block: mask to the end */
}

/* scheme://user:password@host keeps user and host; scheme://token@host masks the token. */
static int match_url_credentials(const char *in, size_t len, size_t i, rd_match *m)
{
    size_t j = i + 3, colon = 0;

    if (!starts_with(in, len, i, "://"))
        return 0;
    for (; j < len && j < i + 3 + RUN_MAX_BYTES; j++) {
        char c = in[j];

        if (c == '@')
            break;
        if (c == ':' && colon == 0)
            colon = j;
        /* RFC 3986 userinfo holds no gen-delims; '<' and '[' start placeholders. */
        if (c == '/' || c == '?' || c == '#' || c == '"' || c == '\'' || c == '\\' ||
            c == '<' || c == '>' || c == '`' || c == '[' || c == ']' ||
            isspace((unsigned char)c))
            return 0;
    }
    if (j >= len || in[j] != '@' || j == i + 3)
        return 0;
    if (colon)
        return colon + 1 < j && set(m, colon + 1, j, TR_REDACT_URL_CREDENTIALS);
    /* a bare token (https://<token>@github.com), not ssh://git@ */
    return j - (i + 3) >= 16 && set(m, i + 3, j, TR_REDACT_URL_CREDENTIALS);
}

static int match_jwt(const char *in, size_t len, size_t i, rd_match *m)
{
    size_t j = i, seg;

    if (!starts_with(in, len, i, "eyJ"))
        return 0;
    for (int part = 0; part < 3; part++) {
        seg = run_len(in, len, j, is_b64url, 16384);
        if (part < 2 && seg < 10)
            return 0;
        j += seg;
        if (part < 2) {
            if (j >= len || in[j] != '.')
                return 0;
            j++;
        }
    }
    return set(m, i, j, TR_REDACT_JWT);
}

static int match_prefixed(const char *in, size_t len, size_t i, rd_match *m)
{
    static const struct {
        const char *prefix;
        size_t min_run;
        int (*pred)(char);
        tr_redact_kind kind;
    } rules[] = {
        {"sk-", 16, is_b64url, TR_REDACT_OPENAI},
        {"sk_", 10, is_b64url, TR_REDACT_STRIPE}, {"rk_live_", 10, is_alnum, TR_REDACT_STRIPE},
        {"rk_test_", 10, is_alnum, TR_REDACT_STRIPE}, {"pk_live_", 10, is_alnum, TR_REDACT_STRIPE},
        {"pk_test_", 10, is_alnum, TR_REDACT_STRIPE},
        {"github_pat_", 20, is_word, TR_REDACT_GITHUB}, {"ghp_", 20, is_alnum, TR_REDACT_GITHUB},
        {"gho_", 20, is_alnum, TR_REDACT_GITHUB}, {"ghu_", 20, is_alnum, TR_REDACT_GITHUB},
        {"ghs_", 20, is_alnum, TR_REDACT_GITHUB}, {"ghr_", 20, is_alnum, TR_REDACT_GITHUB},
        {"glpat-", 20, is_b64url, TR_REDACT_GITLAB}, {"AIza", 30, is_b64url, TR_REDACT_GCP_API_KEY},
        {"xapp-", 10, is_b64url, TR_REDACT_SLACK},
        {"hooks.slack.com/services/", 8, is_b64any, TR_REDACT_SLACK},
        {"hooks.slack.com/workflows/", 8, is_b64any, TR_REDACT_SLACK},
    };
    static const char *const aws_prefix[] = {
        "AKIA", "ASIA", "ABIA", "ACCA", "AIDA", "AROA", "AGPA", "AIPA", "ANPA", "ANVA",
    };

    if (i >= len)
        return 0; /* a value may start at the very end */
    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        size_t plen, n;

        if (in[i] != rules[r].prefix[0] || !starts_with(in, len, i, rules[r].prefix))
            continue;
        plen = strlen(rules[r].prefix);
        n = run_len(in, len, i + plen, rules[r].pred, RUN_MAX_BYTES);
        /* A token ends at a non-word char: "ghp_x..._y" or "AKIA...Xyz" is not one. */
        if (n < rules[r].min_run || (i + plen + n < len && is_word(in[i + plen + n])))
            continue;
        /* A webhook keeps its host: the path is the secret. */
        return set(m, rules[r].pred == is_b64any ? i + plen : i, i + plen + n, rules[r].kind);
    }
    if (starts_with(in, len, i, "xox") && len - i > 4 && strchr("abposr", in[i + 3]) &&
        in[i + 3] != '\0' && in[i + 4] == '-') {
        size_t n = run_len(in, len, i + 5, is_b64url, RUN_MAX_BYTES);

        if (n >= 10)
            return set(m, i, i + 5 + n, TR_REDACT_SLACK);
    }
    for (size_t p = 0; p < sizeof(aws_prefix) / sizeof(aws_prefix[0]); p++) {
        if (in[i] != 'A' || !starts_with(in, len, i, aws_prefix[p]))
            continue;
        if (run_len(in, len, i + 4, is_upper_alnum, 17) == 16 &&
            !(i + 20 < len && is_word(in[i + 20])))
            return set(m, i, i + 20, TR_REDACT_AWS_ACCESS_KEY);
    }
    return 0;
}

static int match_bearer(const char *in, size_t len, size_t i, rd_match *m)
{
    size_t j, n;

    if (!starts_with_ci(in, len, i, "bearer ") && !starts_with_ci(in, len, i, "basic "))
        return 0;
    j = i + (starts_with_ci(in, len, i, "bearer ") ? 7 : 6);
    while (j < len && in[j] == ' ')
        j++;
    n = run_len(in, len, j, is_token_char, 8192);
    return n >= 8 && set(m, j, j + n, TR_REDACT_AUTHORIZATION);
}

/* ------------------------------------------------------------ entropy */

static double shannon_bits(const char *tok, size_t len)
{
    size_t counts[256] = {0};
    double bits = 0;

    for (size_t i = 0; i < len; i++)
        counts[(unsigned char)tok[i]]++;
    for (size_t c = 0; c < 256; c++) {
        if (counts[c]) {
            double p = (double)counts[c] / (double)len;

            bits -= p * log2(p);
        }
    }
    return bits;
}

static int char_class(char c)
{
    return isupper((unsigned char)c) ? 1 : islower((unsigned char)c) ? 2
                                       : isdigit((unsigned char)c)   ? 3
                                                                     : 0;
}

/*
 * Mean length of the pieces a token splits into at symbols, lower→upper and
 * letter↔digit changes ("getUserById2" → get User By Id 2: 2.4 chars;
 * random base64 averages 1.5-2.5, identifiers made of words 3.5 and more).
 */
static double mean_piece_len(const char *tok, size_t len)
{
    size_t pieces = 0, chars = 0;
    int prev = 0;

    for (size_t i = 0; i < len; i++) {
        int c = char_class(tok[i]);

        if (c == 0) {
            prev = 0;
            continue;
        }
        chars++;
        if (prev == 0 || (prev == 2 && c == 1) || ((prev == 3) != (c == 3)))
            pieces++;
        prev = c;
    }
    return pieces ? (double)chars / (double)pieces : 0;
}

static int has_upper_and_lower(const char *tok, size_t len)
{
    int upper = 0, lower = 0;

    for (size_t i = 0; i < len; i++) {
        upper |= isupper((unsigned char)tok[i]) != 0;
        lower |= islower((unsigned char)tok[i]) != 0;
    }
    return upper && lower;
}

static int looks_random(const char *tok, size_t len)
{
    return has_upper_and_lower(tok, len) && mean_piece_len(tok, len) < WORDLIKE_PIECE_LEN;
}

int tr_redact_is_high_entropy(const char *tok, size_t len, double bits_per_char)
{
    size_t hex = 0, part = 0;
    double need;
    int random_part = 0;

    if (tok == NULL || len < ENTROPY_MIN_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        hex += isxdigit((unsigned char)tok[i]) || tok[i] == '-';
    if (hex == len || !looks_random(tok, len))
        return 0; /* digests, SHAs, UUIDs; lower-case names; words */
    /* Paths and Kind/name refs: some '/'-separated part must itself look random. */
    if (memchr(tok, '/', len) != NULL) {
        for (size_t i = 0; i <= len; i++) {
            if (i < len && tok[i] != '/')
                continue;
            if (i - part >= 6 && looks_random(tok + part, i - part))
                random_part = 1;
            part = i + 1;
        }
        if (!random_part)
            return 0;
    }
    if (bits_per_char <= 0)
        bits_per_char = TR_REDACT_ENTROPY_DEFAULT;
    /* A random string of n chars reaches about log2(n) - 0.5 bits: short ones can't hit 4.5. */
    need = log2((double)(len < 64 ? len : 64)) - 0.55;
    if (need > bits_per_char)
        need = bits_per_char;
    return shannon_bits(tok, len) >= need;
}

static int match_entropy(const char *in, size_t len, size_t i, double entropy, int fresh,
                         rd_match *m)
{
    size_t n;

    if (!fresh && i > 0 && is_b64any(in[i - 1]))
        return 0;
    /* Only run starts are judged, so measuring the whole run keeps the pass linear. */
    n = class_run(in, len, i, R_ENTROPY, len - i);
    while (i + n < len && in[i + n] == '=')
        n++; /* padding */
    return n >= ENTROPY_MIN_LEN && tr_redact_is_high_entropy(in + i, n, entropy) &&
           set(m, i, i + n, TR_REDACT_HIGH_ENTROPY);
}

/* ------------------------------------------------------------ assignments */

static int match_shape(const char *in, size_t len, size_t i, rd_match *m)
{
    return match_pem(in, len, i, m) || match_jwt(in, len, i, m) || match_prefixed(in, len, i, m);
}

/* Where the value after "name" starts (past quotes, '=' or ':'), or 0. */
static size_t value_start(const char *in, size_t len, size_t j, char *quote)
{
    if (j < len && in[j] == '\\')
        j++;
    if (j < len && (in[j] == '"' || in[j] == '\''))
        j++;
    while (j < len && (in[j] == ' ' || in[j] == '\t'))
        j++;
    if (j >= len || (in[j] != '=' && in[j] != ':'))
        return 0;
    if (j + 1 < len && (in[j + 1] == '=' || in[j + 1] == '/'))
        return 0; /* "==" comparisons, "scheme://" */
    j++;
    while (j < len && (in[j] == ' ' || in[j] == '\t'))
        j++;
    if (j < len && in[j] == '\\')
        j++;
    *quote = 0;
    if (j < len && (in[j] == '"' || in[j] == '\'')) {
        *quote = in[j];
        j++;
    }
    return j;
}

/* The value at in[j]: a shape inside it wins (its own kind), else up to its end. */
static int match_value(const char *in, size_t len, size_t j, char quote, int whole_line,
                       tr_redact_kind kind, rd_match *m)
{
    size_t v;

    if (whole_line) {
        /* Authorization: Bearer x → keep the scheme, so the token numbers like a bare one. */
        size_t scheme = starts_with_ci(in, len, j, "bearer ") ? 7
                        : starts_with_ci(in, len, j, "basic ") ? 6 : 0;

        j += scheme;
        while (scheme && j < len && in[j] == ' ')
            j++;
    }
    if (match_shape(in, len, j, m))
        return 1;
    for (v = j; v < len; v++) {
        char c = in[v];

        if (c == '\n' || c == '\r' || (quote && c == quote))
            break;
        /* In a quoted value only an escaped quote ends it (JSON "\n" escapes don't). */
        if (c == '\\' && (!quote || (v + 1 < len && (in[v + 1] == quote || in[v + 1] == '\\'))))
            break;
        if (!quote && !whole_line &&
            (isspace((unsigned char)c) || strchr(",;&)}]\"'", c) != NULL))
            break;
        if (!quote && whole_line && strchr("\"'", c) != NULL)
            break;
    }
    return v > j && set(m, j, v, kind);
}

/* NAME = value, "name": "value", name: value, Authorization: whole line. */
static int match_assignment(const char *in, size_t len, size_t i, rd_match *m)
{
    size_t n = class_run(in, len, i, R_NAME, NAME_MAX_BYTES + 1), j;
    char quote = 0;

    if (n == 0 || n > NAME_MAX_BYTES || (!is_alpha(in[i]) && in[i] != '_'))
        return 0;
    if ((j = value_start(in, len, i + n, &quote)) == 0 || !tr_redact_name_is_secret(in + i, n))
        return 0;
    /* A token inside the name is masked by its own rule; masking the value too
     * would skip it (and make a second pass differ from the first). */
    for (size_t k = i + 1; k < i + n; k++) {
        rd_match inner;

        if (match_pem(in, len, k, &inner) ||
            (!is_word(in[k - 1]) &&
             (match_prefixed(in, len, k, &inner) || match_jwt(in, len, k, &inner))))
            return 0;
    }
    return match_value(in, len, j, quote, contains_ci(in + i, n, "authorization"),
                       rd_kind_for_name(in + i, n), m);
}

/*
 * `value` of an env entry whose `name` is secret, in JSON text or YAML
 * (`- name: DB_PASSWORD` / `  value: x` on the next line): the name is
 * looked for in the LOOKBEHIND_BYTES before, nearest first, in the same
 * object (no '}' or other "value" in between).
 */
static int match_env_value(const char *in, size_t len, size_t i, rd_match *m)
{
    size_t lo = i > LOOKBEHIND_BYTES ? i - LOOKBEHIND_BYTES : 0, j;
    char quote = 0;

    if (!starts_with(in, len, i, "value") || (i + 5 < len && is_name_char(in[i + 5])))
        return 0;
    if ((j = value_start(in, len, i + 5, &quote)) == 0)
        return 0;
    for (size_t k = i; k-- > lo;) {
        size_t v, n;
        char q;

        if (in[k] == '}' || (k + 5 <= i && k != i && memcmp(in + k, "value", 5) == 0 &&
                             (k == 0 || !is_name_char(in[k - 1]))))
            return 0;
        if (memcmp(in + k, "name", 4) != 0 || (k > 0 && is_name_char(in[k - 1])) ||
            (v = value_start(in, i, k + 4, &q)) == 0)
            continue;
        n = class_run(in, i, v, R_NAME, NAME_MAX_BYTES + 1);
        if (n == 0 || n > NAME_MAX_BYTES || !tr_redact_name_is_secret(in + v, n))
            return 0;
        return match_value(in, len, j, quote, 0, rd_kind_for_name(in + v, n), m);
    }
    return 0;
}

static unsigned rules_at(const char *in, size_t i)
{
    return rule_table[(unsigned char)in[i]];
}

size_t rd_next_start(const char *in, size_t len, size_t i, int fresh)
{
    unsigned prev;

    if (i < len && fresh && (rules_at(in, i) & R_ALL))
        return i;
    for (prev = i > 0 ? rules_at(in, i - 1) : 0; i < len; i++) {
        unsigned rules = rules_at(in, i);

        /* Inside a word only the rules that need no token start apply. */
        if ((rules & R_ANYWHERE) || ((rules & R_ALL) && !(prev & R_WORD)))
            return i;
        prev = rules;
    }
    return len;
}

/* The rules in mask, in order of precedence: the first that matches wins. */
static int match_any(const char *in, size_t len, size_t i, double entropy, int fresh,
                     unsigned mask, rd_match *m)
{
    int boundary = i == 0 || fresh || !is_word(in[i - 1]);

    if (((mask & R_PEM) && match_pem(in, len, i, m)) ||
        ((mask & R_URL) && match_url_credentials(in, len, i, m)))
        return 1;
    if (!boundary)
        return 0;
    return ((mask & R_JWT) && match_jwt(in, len, i, m)) ||
           ((mask & R_PREFIXED) && match_prefixed(in, len, i, m)) ||
           ((mask & R_BEARER) && match_bearer(in, len, i, m)) ||
           ((mask & R_ASSIGN) && match_assignment(in, len, i, m)) ||
           ((mask & R_ENV) && match_env_value(in, len, i, m)) ||
           ((mask & R_ENTROPY) && match_entropy(in, len, i, entropy, fresh, m));
}

int rd_match_at(const char *in, size_t len, size_t i, double entropy, int fresh, rd_match *m)
{
    return match_any(in, len, i, entropy, fresh, rules_at(in, i), m);
}

int rd_match_at_every_rule(const char *in, size_t len, size_t i, double entropy, int fresh,
                           rd_match *m)
{
    return match_any(in, len, i, entropy, fresh, R_ALL, m);
}
