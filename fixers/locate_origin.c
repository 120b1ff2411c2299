/*
 * locate_origin.c - the first half of locate.h: which GitOps owner an object
 * has (Argo CD tracking annotation or instance label, Flux labels) and where
 * that owner reads its manifests from, plus Git URL comparison.
 *
 * Everything here reads JSON the caller already holds; nothing allocates
 * except the strings of tr_locate_source.
 */
#include "locate.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "buf.h"

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(item) && item->valuestring[0] ? item->valuestring : NULL;
}

/* obj.a.b.c... for a NULL-terminated path of keys. */
static const cJSON *json_path(const cJSON *obj, const char *const *keys)
{
    for (; obj != NULL && *keys != NULL; keys++)
        obj = cJSON_GetObjectItemCaseSensitive(obj, *keys);
    return obj;
}

static void copy_name(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

const char *tr_locate_tool_name(tr_locate_tool tool)
{
    switch (tool) {
    case TR_LOCATE_ARGO:
        return "argocd";
    case TR_LOCATE_FLUX_KUSTOMIZATION:
        return "flux-kustomization";
    case TR_LOCATE_FLUX_HELMRELEASE:
        return "flux-helmrelease";
    case TR_LOCATE_NONE:
        break;
    }
    return "none";
}

/* "apps/v1" → "apps", "v1" → "" (the core group). */
static void api_group(const char *api_version, char *out, size_t cap)
{
    const char *slash = api_version ? strchr(api_version, '/') : NULL;

    if (slash == NULL)
        out[0] = '\0';
    else
        copy_name(out, cap, api_version, (size_t)(slash - api_version));
}

static int span_equals(const char *s, size_t len, const char *want)
{
    size_t want_len = want ? strlen(want) : 0;

    return len == want_len && (len == 0 || memcmp(s, want, len) == 0);
}

/*
 * `<app>:<group>/<kind>:<namespace>/<name>`. Argo writes it only for the
 * object it applied; a copy of that object (kubectl get -o yaml | apply)
 * keeps the annotation but names the original, so the target must be this
 * object. Cluster-scoped objects have an empty namespace part.
 */
static int parse_tracking_id(tr_locate_origin *out, const char *id, const char *api_version,
                             const char *kind, const char *ns, const char *name)
{
    const char *colon1 = strchr(id, ':');
    const char *slash1, *colon2, *slash2;
    char group[TR_LOCATE_NAME_MAX];

    if (colon1 == NULL || colon1 == id)
        return 0;
    slash1 = strchr(colon1 + 1, '/');
    colon2 = slash1 ? strchr(slash1 + 1, ':') : NULL;
    slash2 = colon2 ? strchr(colon2 + 1, '/') : NULL;
    if (slash2 == NULL)
        return 0;
    if (api_version != NULL) {
        api_group(api_version, group, sizeof(group));
        if (!span_equals(colon1 + 1, (size_t)(slash1 - colon1 - 1), group))
            return 0;
    }
    if (kind != NULL && !span_equals(slash1 + 1, (size_t)(colon2 - slash1 - 1), kind))
        return 0;
    if (!span_equals(colon2 + 1, (size_t)(slash2 - colon2 - 1), ns))
        return 0;
    if (!span_equals(slash2 + 1, strlen(slash2 + 1), name))
        return 0;
    out->tool = TR_LOCATE_ARGO;
    out->from_annotation = 1;
    copy_name(out->name, sizeof(out->name), id, (size_t)(colon1 - id));
    return 1;
}

/* Apps in any namespace: the app part is `<ns>_<app>` (neither part may hold '_'). */
static void split_app_namespace(tr_locate_origin *out)
{
    char *under = strchr(out->name, '_');

    if (under == NULL)
        return;
    copy_name(out->namespace_, sizeof(out->namespace_), out->name, (size_t)(under - out->name));
    memmove(out->name, under + 1, strlen(under + 1) + 1);
}

static int flux_owner(tr_locate_origin *out, const cJSON *labels, const cJSON *annotations,
                      tr_locate_tool tool, const char *name_key, const char *ns_key)
{
    const char *name = json_str(labels, name_key);
    const char *ns = json_str(labels, ns_key);

    if (name == NULL && tool == TR_LOCATE_FLUX_HELMRELEASE) {
        /* Helm's own annotations: helm-controller names the release after the HelmRelease
         * unless spec.releaseName overrides it, so this is a best guess. */
        name = json_str(annotations, "meta.helm.sh/release-name");
        ns = json_str(annotations, "meta.helm.sh/release-namespace");
    }
    if (name == NULL)
        return 0;
    out->tool = tool;
    copy_name(out->name, sizeof(out->name), name, strlen(name));
    if (ns != NULL)
        copy_name(out->namespace_, sizeof(out->namespace_), ns, strlen(ns));
    return 1;
}

int tr_locate_origin_of(tr_locate_origin *out, const cJSON *metadata, const char *api_version,
                        const char *kind)
{
    const cJSON *labels, *annotations;
    const char *tracking, *instance, *ns, *name;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(metadata))
        return TR_EINVAL;
    labels = cJSON_GetObjectItemCaseSensitive(metadata, "labels");
    annotations = cJSON_GetObjectItemCaseSensitive(metadata, "annotations");
    ns = json_str(metadata, "namespace");
    name = json_str(metadata, "name");
    /* Flux labels first: they are written by the controller that applied the object. */
    if (flux_owner(out, labels, annotations, TR_LOCATE_FLUX_KUSTOMIZATION,
                   "kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace"))
        return 0;
    if (flux_owner(out, labels, annotations, TR_LOCATE_FLUX_HELMRELEASE,
                   "helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace"))
        return 0;
    memset(out, 0, sizeof(*out));
    tracking = json_str(annotations, "argocd.argoproj.io/tracking-id");
    if (tracking != NULL && name != NULL &&
        parse_tracking_id(out, tracking, api_version, kind, ns, name)) {
        split_app_namespace(out);
        return 0;
    }
    memset(out, 0, sizeof(*out));
    instance = json_str(labels, "app.kubernetes.io/instance");
    if (instance != NULL && tracking == NULL) {
        /* With a tracking-id present but pointing elsewhere, the label was copied too. */
        out->tool = TR_LOCATE_ARGO;
        copy_name(out->name, sizeof(out->name), instance, strlen(instance));
        split_app_namespace(out);
    }
    return 0;
}

/* ------------------------------------------------------------- sources */

static void source_dispose(tr_locate_source *src)
{
    size_t i;

    tr_free(src->repo_url);
    tr_free(src->path);
    tr_free(src->revision);
    tr_free(src->chart);
    tr_free(src->ref_name);
    for (i = 0; i < src->value_file_count; i++) {
        tr_free(src->value_files[i]);
        tr_free(src->value_file_repos[i]);
    }
    memset(src, 0, sizeof(*src));
}

void tr_locate_sources_dispose(tr_locate_sources *sources)
{
    size_t i;

    if (sources == NULL)
        return;
    for (i = 0; i < sources->count; i++)
        source_dispose(&sources->items[i]);
    sources->count = 0;
}

/* NULL in, NULL out; otherwise a copy or -1 when out of memory. */
static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = tr_strdup(src);
    return *dst ? 0 : -1;
}

/* "./a/b/" → "a/b", "." → "". Caller frees. */
static char *clean_dir(const char *path)
{
    size_t len;

    if (path == NULL)
        return tr_strdup("");
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    while (path[0] == '/')
        path++;
    if (strcmp(path, ".") == 0)
        path = "";
    len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        len--;
    return tr_strndup(path, len);
}

static int join_path(char **out, const char *dir, const char *file)
{
    tr_buf b = TR_BUF_INIT(4096);
    char *clean = clean_dir(file);
    int rc;

    if (clean == NULL)
        return TR_ENOMEM;
    rc = dir[0] ? tr_buf_printf(&b, "%s/%s", dir, clean) : tr_buf_puts(&b, clean);
    tr_free(clean);
    *out = rc == 0 ? tr_buf_detach(&b) : NULL;
    tr_buf_dispose(&b);
    return *out ? 0 : TR_ENOMEM;
}

static int argo_one(tr_locate_source *src, const cJSON *spec)
{
    const char *const helm_files[] = {"helm", "valueFiles", NULL};
    const cJSON *files = json_path(spec, helm_files), *file;
    const char *revision;

    if (dup_opt(&src->repo_url, json_str(spec, "repoURL")) != 0 ||
        (src->path = clean_dir(json_str(spec, "path"))) == NULL ||
        dup_opt(&src->chart, json_str(spec, "chart")) != 0 ||
        dup_opt(&src->ref_name, json_str(spec, "ref")) != 0)
        return TR_ENOMEM;
    /* "HEAD" (or nothing) means the repository's default branch. */
    revision = json_str(spec, "targetRevision");
    if (revision != NULL && strcmp(revision, "HEAD") != 0 &&
        dup_opt(&src->revision, revision) != 0)
        return TR_ENOMEM;
    cJSON_ArrayForEach(file, files) {
        if (!cJSON_IsString(file) || src->value_file_count >= TR_LOCATE_MAX_VALUE_FILES)
            continue;
        /* `$ref/...` files name another source; resolved once all sources are read. */
        if (file->valuestring[0] == '$') {
            if (dup_opt(&src->value_files[src->value_file_count], file->valuestring) != 0)
                return TR_ENOMEM;
        } else if (join_path(&src->value_files[src->value_file_count], src->path,
                             file->valuestring) != 0) {
            return TR_ENOMEM;
        }
        src->value_file_count++;
    }
    return 0;
}

/* `$values/envs/prod.yaml` → the path in the source whose ref is "values". */
static int resolve_refs(tr_locate_sources *out)
{
    size_t i, j, k;

    for (i = 0; i < out->count; i++) {
        tr_locate_source *src = &out->items[i];

        for (k = 0; k < src->value_file_count; k++) {
            const char *file = src->value_files[k];
            const char *slash = strchr(file, '/');
            char *resolved;

            if (file[0] != '$' || slash == NULL)
                continue;
            for (j = 0; j < out->count; j++) {
                const char *ref = out->items[j].ref_name;

                if (ref == NULL || !span_equals(file + 1, (size_t)(slash - file - 1), ref))
                    continue;
                resolved = clean_dir(slash + 1);
                if (resolved == NULL || dup_opt(&src->value_file_repos[k],
                                                out->items[j].repo_url) != 0) {
                    tr_free(resolved);
                    return TR_ENOMEM;
                }
                tr_free(src->value_files[k]);
                src->value_files[k] = resolved;
                break;
            }
        }
    }
    return 0;
}

int tr_locate_source_argo(tr_locate_sources *out, const cJSON *application, tr_error *err)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(application, "spec");
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(spec, "source");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(spec, "sources"), *item;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0) {
        cJSON_ArrayForEach(item, list) {
            if (out->count >= TR_LOCATE_MAX_SOURCES || !cJSON_IsObject(item))
                continue;
            if ((rc = argo_one(&out->items[out->count++], item)) != 0)
                goto cleanup;
        }
    } else if (cJSON_IsObject(single)) {
        if ((rc = argo_one(&out->items[out->count++], single)) != 0)
            goto cleanup;
    } else {
        return tr_error_set(err, TR_EINVAL,
                            "Application has neither spec.source nor spec.sources");
    }
    rc = resolve_refs(out);
cleanup:
    if (rc != 0) {
        tr_locate_sources_dispose(out);
        tr_error_set(err, rc, "out of memory reading the Application's sources");
    }
    return rc;
}

static const cJSON *flux_ref_object(const cJSON *owner)
{
    const char *const kust[] = {"spec", "sourceRef", NULL};
    const char *const chart[] = {"spec", "chart", "spec", "sourceRef", NULL};
    const char *const chart_ref[] = {"spec", "chartRef", NULL};
    const cJSON *ref = json_path(owner, kust);

    if (!cJSON_IsObject(ref))
        ref = json_path(owner, chart);
    if (!cJSON_IsObject(ref))
        ref = json_path(owner, chart_ref);
    return cJSON_IsObject(ref) ? ref : NULL;
}

int tr_locate_flux_source_ref(tr_locate_ref *out, const cJSON *owner, tr_error *err)
{
    const char *const ns_path[] = {"metadata", "namespace", NULL};
    const cJSON *ref = flux_ref_object(owner);
    const cJSON *owner_ns = json_path(owner, ns_path);
    const char *kind, *name, *ns;

    memset(out, 0, sizeof(*out));
    kind = json_str(ref, "kind");
    name = json_str(ref, "name");
    if (kind == NULL || name == NULL)
        return tr_error_set(err, TR_ENOTFOUND, "no sourceRef with kind and name in %s",
                            json_str(owner, "kind") ? json_str(owner, "kind") : "object");
    ns = json_str(ref, "namespace");
    if (ns == NULL && cJSON_IsString(owner_ns))
        ns = owner_ns->valuestring;
    copy_name(out->kind, sizeof(out->kind), kind, strlen(kind));
    copy_name(out->name, sizeof(out->name), name, strlen(name));
    if (ns != NULL)
        copy_name(out->namespace_, sizeof(out->namespace_), ns, strlen(ns));
    return 0;
}

static const char *git_revision(const cJSON *git_repository)
{
    const char *const ref_path[] = {"spec", "ref", NULL};
    const cJSON *ref = json_path(git_repository, ref_path);
    static const char *const order[] = {"commit", "tag", "semver", "name", "branch"};
    size_t i;

    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (json_str(ref, order[i]) != NULL)
            return json_str(ref, order[i]);
    return NULL;
}

int tr_locate_source_flux(tr_locate_sources *out, const cJSON *owner,
                          const cJSON *git_repository, tr_error *err)
{
    const char *const chart_spec[] = {"spec", "chart", "spec", NULL};
    const char *const git_url[] = {"spec", "url", NULL};
    const cJSON *chart = json_path(owner, chart_spec), *url = json_path(git_repository, git_url);
    const cJSON *file;
    tr_locate_source *src = &out->items[0];
    const char *kind = json_str(owner, "kind");
    int rc = TR_ENOMEM;

    memset(out, 0, sizeof(*out));
    out->count = 1;
    if (cJSON_IsString(url) && dup_opt(&src->repo_url, url->valuestring) != 0)
        goto cleanup;
    if (dup_opt(&src->revision, git_revision(git_repository)) != 0)
        goto cleanup;
    if (kind != NULL && strcmp(kind, "HelmRelease") == 0) {
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(chart, "valuesFiles");
        const char *chart_name = json_str(chart, "chart");

        if (dup_opt(&src->chart, chart_name) != 0)
            goto cleanup;
        /* From a GitRepository or Bucket the chart is a path in the source. */
        src->path = clean_dir(git_repository && chart_name ? chart_name : NULL);
        if (src->path == NULL)
            goto cleanup;
        cJSON_ArrayForEach(file, files) {
            if (!cJSON_IsString(file) || src->value_file_count >= TR_LOCATE_MAX_VALUE_FILES)
                continue;
            src->value_files[src->value_file_count] = clean_dir(file->valuestring);
            if (src->value_files[src->value_file_count++] == NULL)
                goto cleanup;
        }
    } else if ((src->path = clean_dir(json_str(cJSON_GetObjectItemCaseSensitive(owner, "spec"),
                                               "path"))) == NULL) {
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc != 0) {
        tr_locate_sources_dispose(out);
        tr_error_set(err, rc, "out of memory reading the Flux source");
    }
    return rc;
}

/* ------------------------------------------------------------- URLs */

/*
 * Reduce a Git URL to "host/path" with a lower-case host, no user, port,
 * scheme, trailing slashes or ".git". Returns 0, or -1 when it is too long.
 */
static int canonical_url(const char *url, char *out, size_t cap)
{
    const char *host, *rest, *at, *colon, *slash;
    size_t host_len, len, i;

    if (strncmp(url, "file://", 7) == 0) {
        host = "";
        host_len = 0;
        rest = url + 7;
    } else if (url[0] == '/') {
        host = "";
        host_len = 0;
        rest = url;
    } else {
        const char *scheme = strstr(url, "://");
        const char *start = scheme ? scheme + 3 : url;

        slash = strchr(start, '/');
        at = strchr(start, '@');
        if (at != NULL && (slash == NULL || at < slash))
            start = at + 1;
        colon = strchr(start, ':');
        slash = strchr(start, '/');
        host = start;
        if (colon != NULL && (slash == NULL || colon < slash)) {
            host_len = (size_t)(colon - start);
            /* ssh://host:2222/org or the scp form host:org/repo */
            rest = colon + 1;
            if (scheme != NULL)
                rest = slash ? slash : rest + strlen(rest);
        } else {
            host_len = slash ? (size_t)(slash - start) : strlen(start);
            rest = start + host_len;
        }
    }
    while (*rest == '/')
        rest++;
    len = strlen(rest);
    for (;;) {
        while (len > 0 && rest[len - 1] == '/')
            len--;
        if (len >= 4 && strncmp(rest + len - 4, ".git", 4) == 0)
            len -= 4;
        else
            break;
    }
    if (host_len + 1 + len + 1 > cap)
        return -1;
    for (i = 0; i < host_len; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    out[host_len] = '/';
    memcpy(out + host_len + 1, rest, len);
    out[host_len + 1 + len] = '\0';
    return 0;
}

int tr_locate_repo_matches(const char *url_a, const char *url_b)
{
    char a[2048], b[2048];

    if (url_a == NULL || url_b == NULL || !url_a[0] || !url_b[0])
        return 0;
    if (canonical_url(url_a, a, sizeof(a)) != 0 || canonical_url(url_b, b, sizeof(b)) != 0)
        return 0;
    return strcmp(a, b) == 0;
}
