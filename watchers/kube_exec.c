/*
 * kube_exec.c - the data half of exec credential plugins, declared in
 * kubeconfig.h: the ExecCredential request put in KUBERNETES_EXEC_INFO and
 * the parsing of what the plugin prints. Running the plugin is the
 * watcher's job, off the loop.
 *
 * Field names are those of client-go's ExecCredential types, so a plugin
 * that works for kubectl works here.
 */
#include "kubeconfig.h"

#include "alloc.h"
#include "error.h"
#include "kube_yaml.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

static int add_b64(cJSON *obj, const char *key, const char *data, size_t len)
{
    unsigned char *b64;
    int ok;

    if (len > (size_t)INT_MAX / 2)
        return 0;
    b64 = tr_malloc((len + 2) / 3 * 4 + 1);
    if (b64 == NULL)
        return 0;
    (void)EVP_EncodeBlock(b64, (const unsigned char *)data, (int)len); /* length not needed */
    ok = cJSON_AddStringToObject(obj, key, (const char *)b64) != NULL;
    tr_free(b64);
    return ok;
}

/* spec.cluster of the request, field names as in client-go's exec Cluster type. */
static int add_cluster_info(cJSON *spec, const tr_kube_conn *conn, tr_error *err)
{
    cJSON *cluster = cJSON_AddObjectToObject(spec, "cluster");
    char *ca = NULL;
    size_t ca_len = 0;
    int rc = TR_OK, ok;

    ok = cluster && cJSON_AddStringToObject(cluster, "server", conn->server ? conn->server : "");
    if (ok && conn->tls_server_name)
        ok = cJSON_AddStringToObject(cluster, "tls-server-name", conn->tls_server_name) != NULL;
    if (ok && conn->insecure)
        ok = cJSON_AddBoolToObject(cluster, "insecure-skip-tls-verify", 1) != NULL;
    if (ok && conn->proxy_url)
        ok = cJSON_AddStringToObject(cluster, "proxy-url", conn->proxy_url) != NULL;
    if (ok && conn->ca_pem)
        ok = add_b64(cluster, "certificate-authority-data", conn->ca_pem, conn->ca_pem_len);
    else if (ok && conn->ca_file) {
        /* client-go sends the CA bytes, read from the file, not its path. */
        rc = tr_kubeconfig_read_file(conn->ca_file, TR_KUBECONFIG_MAX_BYTES, &ca, &ca_len, err);
        if (rc != TR_OK)
            return rc;
        ok = add_b64(cluster, "certificate-authority-data", ca, ca_len);
        tr_free(ca);
    }
    return ok ? TR_OK : tr_error_set(err, TR_ENOMEM, "out of memory");
}

int tr_kube_exec_request_json(char **out, const tr_kube_conn *conn, tr_error *err)
{
    cJSON *root = NULL, *spec;
    char *printed = NULL;
    int rc = TR_OK;

    *out = NULL;
    if (conn == NULL || conn->exec == NULL)
        return tr_error_set(err, TR_EINVAL, "exec request: the connection has no exec plugin");
    root = cJSON_CreateObject();
    if (root == NULL || !cJSON_AddStringToObject(root, "kind", "ExecCredential") ||
        !cJSON_AddStringToObject(root, "apiVersion", conn->exec->api_version) ||
        (spec = cJSON_AddObjectToObject(root, "spec")) == NULL ||
        !cJSON_AddBoolToObject(spec, "interactive", 0)) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (conn->exec->provide_cluster_info && (rc = add_cluster_info(spec, conn, err)) != TR_OK)
        goto cleanup;
    printed = cJSON_PrintUnformatted(root);
    /* cJSON may not use our allocator (it is installed at startup); copy to be sure. */
    if (printed == NULL || (*out = tr_strdup(printed)) == NULL)
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
cleanup:
    if (printed)
        cJSON_free(printed);
    cJSON_Delete(root);
    return rc;
}

static int parse_digits(const char **p, int count, int *out)
{
    int i;

    *out = 0;
    for (i = 0; i < count; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return 0;
        *out = *out * 10 + (**p - '0');
    }
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the usual era arithmetic). */
static int64_t days_from_civil(int64_t year, int month, int day)
{
    int64_t era, yoe, doy, doe;

    year -= month <= 2;
    era = (year >= 0 ? year : year - 399) / 400;
    yoe = year - era * 400;
    doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* RFC 3339 (as Go's time.RFC3339 parses it) to ms since the epoch. */
static int parse_rfc3339_ms(const char *s, int64_t *out)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int year, month, day, hour, min, sec, ms = 0, off_h = 0, off_m = 0, sign = 0, digit;
    int leap;

    if (!parse_digits(&s, 4, &year) || *s++ != '-' || !parse_digits(&s, 2, &month) ||
        *s++ != '-' || !parse_digits(&s, 2, &day) || (*s != 'T' && *s != 't'))
        return 0;
    s++;
    if (!parse_digits(&s, 2, &hour) || *s++ != ':' || !parse_digits(&s, 2, &min) ||
        *s++ != ':' || !parse_digits(&s, 2, &sec))
        return 0;
    if (*s == '.') {
        s++;
        for (digit = 0; *s >= '0' && *s <= '9'; s++, digit++)
            if (digit < 3)
                ms = ms * 10 + (*s - '0');
        if (digit == 0 || digit > 9)
            return 0;
        for (; digit < 3; digit++)
            ms *= 10;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (!parse_digits(&s, 2, &off_h) || *s++ != ':' || !parse_digits(&s, 2, &off_m) ||
            off_h > 23 || off_m > 59)
            return 0;
    } else {
        return 0;
    }
    leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (*s != '\0' || month < 1 || month > 12 || day < 1 || day > mdays[month - 1] ||
        (month == 2 && day == 29 && !leap) || hour > 23 || min > 59 || sec > 59)
        return 0;
    *out = ((days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec) -
            (int64_t)sign * (off_h * 3600 + off_m * 60)) * 1000 + ms;
    return 1;
}

/* A status field: NULL when absent or "", an error when not a string. */
static int status_str(const cJSON *status, const char *key, const char **out, tr_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(status, key);

    *out = NULL;
    if (item == NULL || cJSON_IsNull(item))
        return TR_OK;
    if (!cJSON_IsString(item))
        return tr_error_set(err, TR_EPARSE, "exec plugin output: status.%s is not a string", key);
    if (item->valuestring[0] != '\0')
        *out = item->valuestring;
    return TR_OK;
}

static int check_envelope(const cJSON *root, const char *expected_api_version, tr_error *err)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(root, "apiVersion");
    const char *api_text = cJSON_IsString(api) ? api->valuestring : "";

    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "ExecCredential") != 0)
        return tr_error_set(err, TR_EPARSE, "exec plugin output: kind is \"%s\", want "
                            "ExecCredential", cJSON_IsString(kind) ? kind->valuestring : "");
    if (expected_api_version && strcmp(api_text, expected_api_version) != 0)
        return tr_error_set(err, TR_EPARSE, "exec plugin output: apiVersion \"%s\" does not match "
                            "the configured \"%s\"", api_text, expected_api_version);
    if (strcmp(api_text, TR_KUBE_EXEC_API_V1) != 0 &&
        strcmp(api_text, TR_KUBE_EXEC_API_V1BETA1) != 0)
        return tr_error_set(err, TR_EPARSE, "exec plugin output: apiVersion \"%s\" is not "
                            "supported", api_text);
    return TR_OK;
}

int tr_kube_exec_parse_response(tr_kube_exec_cred **out, const char *expected_api_version,
                                const char *json, size_t len, tr_error *err)
{
    const char *token, *cert, *key, *expiry;
    const cJSON *status;
    tr_kube_exec_cred *cred = NULL;
    cJSON *root = NULL;
    int rc;

    *out = NULL;
    if (len > TR_KUBE_EXEC_OUTPUT_MAX_BYTES)
        return tr_error_set(err, TR_ETOOBIG, "exec plugin output is larger than %zu bytes",
                            TR_KUBE_EXEC_OUTPUT_MAX_BYTES);
    root = cJSON_ParseWithLength(json, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        rc = tr_error_set(err, TR_EPARSE, "exec plugin output is not a JSON object");
        goto cleanup;
    }
    if ((rc = check_envelope(root, expected_api_version, err)) != TR_OK)
        goto cleanup;
    status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (!cJSON_IsObject(status)) {
        rc = tr_error_set(err, TR_EPARSE, "exec plugin output has no status object");
        goto cleanup;
    }
    rc = status_str(status, "token", &token, err);
    if (rc == TR_OK)
        rc = status_str(status, "clientCertificateData", &cert, err);
    if (rc == TR_OK)
        rc = status_str(status, "clientKeyData", &key, err);
    if (rc == TR_OK)
        rc = status_str(status, "expirationTimestamp", &expiry, err);
    if (rc != TR_OK)
        goto cleanup;
    if ((cert != NULL) != (key != NULL))
        rc = tr_error_set(err, TR_EPARSE, "exec plugin output has only one of "
                          "status.clientCertificateData and status.clientKeyData");
    else if (token == NULL && cert == NULL)
        rc = tr_error_set(err, TR_EPARSE, "exec plugin output has neither status.token nor "
                          "status.clientCertificateData/clientKeyData");
    else if (token && !tr_kubeconfig_token_is_clean(token))
        rc = tr_error_set(err, TR_EPARSE, "exec plugin output: status.token contains control "
                          "characters or spaces");
    else if (cert && (!strstr(cert, "-----BEGIN ") || !strstr(key, "-----BEGIN ")))
        rc = tr_error_set(err, TR_EPARSE, "exec plugin output: client certificate or key is "
                          "not PEM");
    if (rc != TR_OK)
        goto cleanup;
    cred = tr_calloc(1, sizeof(*cred));
    if (cred == NULL || (token && (cred->token = tr_strdup(token)) == NULL) ||
        (cert && ((cred->client_cert_pem = tr_strdup(cert)) == NULL ||
                  (cred->client_key_pem = tr_strdup(key)) == NULL))) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (expiry && !parse_rfc3339_ms(expiry, &cred->expiration_ms)) {
        rc = tr_error_set(err, TR_EPARSE, "exec plugin output: expirationTimestamp \"%s\" is "
                          "not an RFC 3339 time", expiry);
        goto cleanup;
    }
    /* 0 means "never expires": an expiry at or before the epoch is simply expired. */
    if (expiry && cred->expiration_ms <= 0)
        cred->expiration_ms = 1;
    *out = cred;
    cred = NULL;
cleanup:
    tr_kube_exec_cred_free(cred);
    cJSON_Delete(root);
    return rc;
}

void tr_kube_exec_cred_free(tr_kube_exec_cred *cred)
{
    if (cred == NULL)
        return;
    tr_free(cred->token);
    tr_free(cred->client_cert_pem);
    tr_free(cred->client_key_pem);
    tr_free(cred);
}
