/*
 * config_value.c - the values behind configuration keys that need more than
 * a type check: durations, secrets named by `*_env` / `*_file` keys, and the
 * Kubernetes client configuration lookup of kubernetes.kubeconfig.
 */
#include "config.h"

#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    uint64_t ms;
} duration_units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};

#define UNIT_COUNT (sizeof(duration_units) / sizeof(duration_units[0]))

static int duration_fail(const char **why_out, const char *why)
{
    if (why_out != NULL)
        *why_out = why;
    return TR_EINVAL;
}

int tr_config_duration_parse(const char *text, uint64_t *ms_out, const char **why_out)
{
    const char *p = text;
    uint64_t total = 0, value;
    size_t rank, last_rank = UNIT_COUNT, len;

    if (text == NULL || text[0] == '\0')
        return duration_fail(why_out, "it is empty");
    if (text[0] == '-')
        return duration_fail(why_out, "it must not be negative");
    while (*p != '\0') {
        if (*p < '0' || *p > '9')
            return duration_fail(why_out, "expected <number><unit>, e.g. \"90s\" or \"1h30m\"");
        for (value = 0; *p >= '0' && *p <= '9'; p++) {
            value = value * 10 + (uint64_t)(*p - '0');
            if (value > TR_CONFIG_DURATION_MAX_MS)
                return duration_fail(why_out, "it is longer than 8760h");
        }
        if (*p == '.')
            return duration_fail(why_out, "fractions are not supported (write \"1h30m\", "
                                          "not \"1.5h\")");
        if (*p == '\0')
            return duration_fail(why_out, "it has no unit (use ms, s, m or h, e.g. \"90s\")");
        /* "ms" before "m": the longest unit name that matches wins */
        for (rank = UNIT_COUNT; rank-- > 0;) {
            len = strlen(duration_units[rank].name);
            if (strncmp(p, duration_units[rank].name, len) == 0 &&
                !(p[len] >= 'a' && p[len] <= 'z'))
                break;
        }
        if (rank >= UNIT_COUNT)
            return duration_fail(why_out, "unknown unit (use ms, s, m or h)");
        if (last_rank < UNIT_COUNT && rank <= last_rank)
            return duration_fail(why_out, "units must go from largest to smallest, each once "
                                          "(e.g. \"1h30m\")");
        last_rank = rank;
        p += len;
        total += value * duration_units[rank].ms;
        if (total > TR_CONFIG_DURATION_MAX_MS)
            return duration_fail(why_out, "it is longer than 8760h");
    }
    *ms_out = total;
    return TR_OK;
}

void tr_config_duration_format(uint64_t ms, char *out, size_t size)
{
    size_t i, used = 0;
    uint64_t part;
    int n;

    if (size == 0)
        return;
    out[0] = '\0';
    if (ms == 0) {
        (void)snprintf(out, size, "0s");
        return;
    }
    for (i = 0; i < UNIT_COUNT && used < size; i++) {
        part = ms / duration_units[i].ms;
        ms %= duration_units[i].ms;
        if (part == 0)
            continue;
        n = snprintf(out + used, size - used, "%llu%s", (unsigned long long)part,
                     duration_units[i].name);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

void tr_secret_free(char *secret)
{
    if (secret == NULL)
        return;
    explicit_bzero(secret, strlen(secret));
    tr_free(secret);
}

/* Read at most TR_CONFIG_SECRET_MAX_BYTES of path into a new string (tr_secret_free). */
static int read_secret_file(const char *path, char **out, const char **why_out)
{
    char *data = NULL;
    size_t len = 0;
    ssize_t n;
    int fd, rc = TR_OK;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why_out = strerror(errno);
        return TR_EIO;
    }
    /* one allocation of the cap: growing would leave copies of the secret behind */
    data = tr_malloc(TR_CONFIG_SECRET_MAX_BYTES + 2);
    if (data == NULL) {
        rc = TR_ENOMEM;
        *why_out = "out of memory";
        goto cleanup;
    }
    while (len <= TR_CONFIG_SECRET_MAX_BYTES) {
        n = read(fd, data + len, TR_CONFIG_SECRET_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = TR_EIO;
            *why_out = strerror(errno);
            goto cleanup;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > TR_CONFIG_SECRET_MAX_BYTES) {
        rc = TR_ETOOBIG;
        *why_out = "larger than 64 KiB";
        goto cleanup;
    }
    if (len > 0 && data[len - 1] == '\n')
        len--;
    if (len > 0 && data[len - 1] == '\r')
        len--;
    data[len] = '\0';
    if (len == 0 || memchr(data, '\0', len) != NULL) {
        rc = TR_EINVAL;
        *why_out = len == 0 ? "the file is empty" : "the file contains a NUL byte";
        goto cleanup;
    }
    *out = tr_strndup(data, len);
    if (*out == NULL) {
        rc = TR_ENOMEM;
        *why_out = "out of memory";
    }
cleanup:
    if (data != NULL) {
        explicit_bzero(data, TR_CONFIG_SECRET_MAX_BYTES + 2);
        tr_free(data);
    }
    (void)close(fd); /* read-only descriptor */
    return rc;
}

int tr_config_secret_resolve(const char *env_name, const char *file_path, char **out,
                             tr_error *err)
{
    bool has_env = env_name != NULL && env_name[0] != '\0';
    bool has_file = file_path != NULL && file_path[0] != '\0';
    const char *value = has_env ? getenv(env_name) : NULL;
    const char *env_state = value == NULL ? "is not set" : "is empty";
    const char *why = NULL;
    int rc;

    *out = NULL;
    if (value != NULL && value[0] != '\0') {
        *out = tr_strdup(value);
        return *out != NULL ? TR_OK : tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    if (!has_env && !has_file)
        return tr_error_set(err, TR_EINVAL, "no secret configured (neither an environment "
                                            "variable nor a file is named)");
    if (!has_file)
        return tr_error_set(err, TR_ENOTFOUND, "environment variable %s %s", env_name,
                            env_state);
    rc = read_secret_file(file_path, out, &why);
    if (rc == TR_OK)
        return TR_OK;
    if (has_env)
        return tr_error_set(err, rc, "environment variable %s %s and %s: cannot read: %s",
                            env_name, env_state, file_path, why);
    return tr_error_set(err, rc, "%s: cannot read: %s", file_path, why);
}

int tr_config_kubeconfig_path(const char *setting, char **path_out, tr_error *err)
{
    const char *list, *home, *colon;
    tr_buf path = TR_BUF_INIT(4096);
    int rc = TR_OK;

    *path_out = NULL;
    if (setting == NULL || setting[0] == '\0')
        return TR_OK;
    if (strcmp(setting, "auto") != 0) {
        *path_out = tr_strdup(setting);
        return *path_out != NULL ? TR_OK : tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    if (getenv("KUBERNETES_SERVICE_HOST") != NULL)
        return TR_OK;
    list = getenv("KUBECONFIG");
    if (list != NULL && list[0] != '\0') {
        /* kubectl merges every file of the list; the first one is the one we read */
        colon = strchr(list, ':');
        rc = tr_buf_put(&path, list, colon != NULL ? (size_t)(colon - list) : strlen(list));
    } else {
        home = getenv("HOME");
        if (home == NULL || home[0] == '\0')
            return tr_error_set(err, TR_ENOTFOUND, "kubeconfig \"auto\": not in a cluster, "
                                                   "and neither $KUBECONFIG nor $HOME is set");
        rc = tr_buf_printf(&path, "%s/.kube/config", home);
        if (rc == TR_OK && access(path.ptr, F_OK) != 0) {
            rc = tr_error_set(err, TR_ENOTFOUND, "kubeconfig \"auto\": not in a cluster, "
                                                 "$KUBECONFIG is not set and %s does not exist",
                              path.ptr);
            goto cleanup;
        }
    }
    if (rc < 0) {
        rc = tr_error_set(err, rc, "kubeconfig \"auto\": %s", tr_strerror(rc));
        goto cleanup;
    }
    *path_out = tr_buf_detach(&path);
cleanup:
    tr_buf_dispose(&path);
    return rc;
}
