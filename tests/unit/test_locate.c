#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "error.h"
#include "locate.h"

/*
 * Real work trees in temp directories (one of them a real git repository
 * committed with the git CLI), the real Terraform fixtures with the ranges
 * Terraform printed for them, and CRD-shaped Argo/Flux objects.
 */

#define TF_FIXTURES "../shared/fixtures/terraform/"
#define K8S_FIXTURES "../shared/fixtures/k8s/"
#define SECRET_B64 "c3VwZXJzZWNyZXQtcGFzc3dvcmQ="
#define SECRET_PLAIN "hunter2-plain-text"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    tr_buf b = TR_BUF_INIT(0);
    char chunk[4096];
    size_t n;

    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(tr_buf_put(&b, chunk, n), 0);
    fclose(f);
    return tr_buf_detach(&b);
}

/* Write root/rel, creating directories on the way. */
static void put(const char *root, const char *rel, const char *text)
{
    char path[1024], *p;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        (void)mkdir(path, 0755); /* EEXIST is fine */
        *p = '/';
    }
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static void make_root(char *root, size_t cap)
{
    snprintf(root, cap, "/tmp/test_locate_XXXXXX");
    assert_non_null(mkdtemp(root));
}

static void remove_root(const char *root)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

static cJSON *parse(const char *json)
{
    cJSON *obj = cJSON_Parse(json);

    assert_non_null(obj);
    return obj;
}

/* ------------------------------------------------------------- origin */

static void test_origin_argo_tracking_id_names_the_app(void **state)
{
    cJSON *meta = parse("{\"name\":\"web\",\"namespace\":\"shop\",\"annotations\":{"
                        "\"argocd.argoproj.io/tracking-id\":\"shop-app:apps/Deployment:shop/web\"},"
                        "\"labels\":{\"app.kubernetes.io/instance\":\"other\"}}");
    cJSON *core = parse("{\"name\":\"cfg\",\"namespace\":\"shop\",\"annotations\":{"
                        "\"argocd.argoproj.io/tracking-id\":"
                        "\"team_payments:/ConfigMap:shop/cfg\"}}");
    tr_locate_origin o;

    (void)state;
    assert_int_equal(tr_locate_origin_of(&o, meta, "apps/v1", "Deployment"), 0);
    assert_int_equal(o.tool, TR_LOCATE_ARGO);
    assert_string_equal(o.name, "shop-app");
    assert_string_equal(o.namespace_, "");
    assert_int_equal(o.from_annotation, 1);
    /* core group is empty; apps in any namespace write <ns>_<app> */
    assert_int_equal(tr_locate_origin_of(&o, core, "v1", "ConfigMap"), 0);
    assert_int_equal(o.tool, TR_LOCATE_ARGO);
    assert_string_equal(o.name, "payments");
    assert_string_equal(o.namespace_, "team");
    cJSON_Delete(meta);
    cJSON_Delete(core);
}

static void test_origin_ignores_tracking_id_of_another_object(void **state)
{
    /* kubectl get -o yaml | sed | kubectl apply: the copy keeps the original's annotation */
    cJSON *copy = parse("{\"name\":\"web-copy\",\"namespace\":\"shop\",\"annotations\":{"
                        "\"argocd.argoproj.io/tracking-id\":\"shop-app:apps/Deployment:shop/web\"},"
                        "\"labels\":{\"app.kubernetes.io/instance\":\"shop-app\"}}");
    cJSON *label = parse("{\"name\":\"web\",\"labels\":{"
                         "\"app.kubernetes.io/instance\":\"guestbook\"}}");
    tr_locate_origin o;

    (void)state;
    assert_int_equal(tr_locate_origin_of(&o, copy, "apps/v1", "Deployment"), 0);
    assert_int_equal(o.tool, TR_LOCATE_NONE);
    /* same name, wrong kind */
    cJSON_SetValuestring(cJSON_GetObjectItem(copy, "name"), "web");
    assert_int_equal(tr_locate_origin_of(&o, copy, "apps/v1", "StatefulSet"), 0);
    assert_int_equal(o.tool, TR_LOCATE_NONE);
    assert_int_equal(tr_locate_origin_of(&o, label, "v1", "Service"), 0);
    assert_int_equal(o.tool, TR_LOCATE_ARGO);
    assert_string_equal(o.name, "guestbook");
    assert_int_equal(o.from_annotation, 0);
    cJSON_Delete(copy);
    cJSON_Delete(label);
}

static void test_origin_flux_labels(void **state)
{
    cJSON *kust = parse("{\"name\":\"web\",\"labels\":{\"kustomize.toolkit.fluxcd.io/name\":"
                        "\"apps\",\"kustomize.toolkit.fluxcd.io/namespace\":\"flux-system\"}}");
    cJSON *helm = parse("{\"name\":\"podinfo\",\"labels\":{\"helm.toolkit.fluxcd.io/name\":"
                        "\"podinfo\",\"helm.toolkit.fluxcd.io/namespace\":\"apps\"}}");
    cJSON *bare = parse("{\"name\":\"x\",\"annotations\":{\"meta.helm.sh/release-name\":\"redis\","
                        "\"meta.helm.sh/release-namespace\":\"cache\"}}");
    tr_locate_origin o;

    (void)state;
    assert_int_equal(tr_locate_origin_of(&o, kust, "apps/v1", "Deployment"), 0);
    assert_int_equal(o.tool, TR_LOCATE_FLUX_KUSTOMIZATION);
    assert_string_equal(o.name, "apps");
    assert_string_equal(o.namespace_, "flux-system");
    assert_int_equal(tr_locate_origin_of(&o, helm, "apps/v1", "Deployment"), 0);
    assert_int_equal(o.tool, TR_LOCATE_FLUX_HELMRELEASE);
    assert_string_equal(o.namespace_, "apps");
    assert_int_equal(tr_locate_origin_of(&o, bare, "v1", "Service"), 0);
    assert_int_equal(o.tool, TR_LOCATE_FLUX_HELMRELEASE);
    assert_string_equal(o.name, "redis");
    assert_string_equal(o.namespace_, "cache");
    assert_int_equal(tr_locate_origin_of(&o, NULL, NULL, NULL), TR_EINVAL);
    cJSON_Delete(kust);
    cJSON_Delete(helm);
    cJSON_Delete(bare);
}

/* ------------------------------------------------------------- sources */

static void test_source_argo_single_and_multi_source(void **state)
{
    cJSON *single = parse(
        "{\"apiVersion\":\"argoproj.io/v1alpha1\",\"kind\":\"Application\",\"metadata\":{"
        "\"name\":\"shop\",\"namespace\":\"argocd\"},\"spec\":{\"project\":\"default\","
        "\"source\":{\"repoURL\":\"https://git.example.com/org/deploy.git\",\"path\":"
        "\"./overlays/dev/\",\"targetRevision\":\"HEAD\",\"helm\":{\"valueFiles\":["
        "\"values-dev.yaml\"]}},\"destination\":{\"server\":\"https://kubernetes.default.svc\","
        "\"namespace\":\"dev\"}}}");
    cJSON *multi = parse(
        "{\"apiVersion\":\"argoproj.io/v1alpha1\",\"kind\":\"Application\",\"metadata\":{"
        "\"name\":\"pay\"},\"spec\":{\"sources\":[{\"repoURL\":\"https://charts.example.com\","
        "\"chart\":\"payments\",\"targetRevision\":\"1.4.2\",\"helm\":{\"valueFiles\":["
        "\"$values/envs/prod/values.yaml\"]}},{\"repoURL\":\"git@git.example.com:org/values.git\","
        "\"targetRevision\":\"main\",\"ref\":\"values\"}]}}");
    cJSON *empty = parse("{\"spec\":{}}");
    tr_locate_sources s;
    tr_error err = {0};

    (void)state;
    assert_int_equal(tr_locate_source_argo(&s, single, &err), 0);
    assert_int_equal(s.count, 1);
    assert_string_equal(s.items[0].repo_url, "https://git.example.com/org/deploy.git");
    assert_string_equal(s.items[0].path, "overlays/dev");
    assert_null(s.items[0].revision); /* HEAD = the default branch */
    assert_int_equal(s.items[0].value_file_count, 1);
    assert_string_equal(s.items[0].value_files[0], "overlays/dev/values-dev.yaml");
    tr_locate_sources_dispose(&s);

    assert_int_equal(tr_locate_source_argo(&s, multi, &err), 0);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.items[0].chart, "payments");
    assert_string_equal(s.items[0].revision, "1.4.2");
    assert_string_equal(s.items[0].value_files[0], "envs/prod/values.yaml");
    assert_string_equal(s.items[0].value_file_repos[0], "git@git.example.com:org/values.git");
    assert_string_equal(s.items[1].revision, "main");
    tr_locate_sources_dispose(&s);

    assert_int_equal(tr_locate_source_argo(&s, empty, &err), TR_EINVAL);
    assert_non_null(strstr(err.message, "spec.source"));
    cJSON_Delete(single);
    cJSON_Delete(multi);
    cJSON_Delete(empty);
}

static void test_source_flux_kustomization_and_helmrelease(void **state)
{
    cJSON *kust = parse(
        "{\"apiVersion\":\"kustomize.toolkit.fluxcd.io/v1\",\"kind\":\"Kustomization\","
        "\"metadata\":{\"name\":\"apps\",\"namespace\":\"flux-system\"},\"spec\":{\"interval\":"
        "\"10m\",\"path\":\"./overlays/prod\",\"prune\":true,\"sourceRef\":{\"kind\":"
        "\"GitRepository\",\"name\":\"fleet\"}}}");
    cJSON *repo = parse(
        "{\"apiVersion\":\"source.toolkit.fluxcd.io/v1\",\"kind\":\"GitRepository\",\"metadata\":"
        "{\"name\":\"fleet\",\"namespace\":\"flux-system\"},\"spec\":{\"interval\":\"1m\",\"url\":"
        "\"ssh://git@git.example.com/org/deploy\",\"ref\":{\"branch\":\"main\",\"tag\":\"v2\"}}}");
    cJSON *hr = parse(
        "{\"apiVersion\":\"helm.toolkit.fluxcd.io/v2\",\"kind\":\"HelmRelease\",\"metadata\":{"
        "\"name\":\"podinfo\",\"namespace\":\"apps\"},\"spec\":{\"interval\":\"5m\",\"chart\":{"
        "\"spec\":{\"chart\":\"./charts/podinfo\",\"sourceRef\":{\"kind\":\"GitRepository\","
        "\"name\":\"fleet\",\"namespace\":\"flux-system\"},\"valuesFiles\":["
        "\"charts/podinfo/values.yaml\",\"./charts/podinfo/values-prod.yaml\"]}}}}");
    tr_locate_sources s;
    tr_locate_ref ref;
    tr_error err = {0};

    (void)state;
    assert_int_equal(tr_locate_flux_source_ref(&ref, kust, &err), 0);
    assert_string_equal(ref.kind, "GitRepository");
    assert_string_equal(ref.name, "fleet");
    assert_string_equal(ref.namespace_, "flux-system"); /* defaults to the owner's */
    assert_int_equal(tr_locate_source_flux(&s, kust, repo, &err), 0);
    assert_string_equal(s.items[0].repo_url, "ssh://git@git.example.com/org/deploy");
    assert_string_equal(s.items[0].path, "overlays/prod");
    assert_string_equal(s.items[0].revision, "v2"); /* tag before branch */
    tr_locate_sources_dispose(&s);

    assert_int_equal(tr_locate_flux_source_ref(&ref, hr, &err), 0);
    assert_string_equal(ref.namespace_, "flux-system");
    assert_int_equal(tr_locate_source_flux(&s, hr, repo, &err), 0);
    assert_string_equal(s.items[0].path, "charts/podinfo");
    assert_int_equal(s.items[0].value_file_count, 2);
    assert_string_equal(s.items[0].value_files[1], "charts/podinfo/values-prod.yaml");
    tr_locate_sources_dispose(&s);
    assert_int_equal(tr_locate_flux_source_ref(&ref, repo, &err), TR_ENOTFOUND);
    cJSON_Delete(kust);
    cJSON_Delete(repo);
    cJSON_Delete(hr);
}

static void test_repo_url_forms_match(void **state)
{
    (void)state;
    assert_true(tr_locate_repo_matches("https://GitHub.com/org/repo.git",
                                       "git@github.com:org/repo"));
    assert_true(tr_locate_repo_matches("ssh://git@github.com/org/repo/",
                                       "https://github.com/org/repo"));
    assert_true(tr_locate_repo_matches("ssh://git@gitlab.example.com:2222/g/sub/p.git",
                                       "https://gitlab.example.com/g/sub/p"));
    assert_true(tr_locate_repo_matches("file:///srv/git/deploy.git", "/srv/git/deploy"));
    assert_false(tr_locate_repo_matches("https://github.com/org/repo",
                                        "https://github.com/org/repo2"));
    assert_false(tr_locate_repo_matches("https://github.com/org/repo",
                                        "https://gitlab.com/org/repo"));
    assert_false(tr_locate_repo_matches(NULL, "https://github.com/org/repo"));
}

/* ------------------------------------------------------------- index */

static const char BASE_DEPLOY[] =
    "# the web tier\n"
    "apiVersion: apps/v1\n"
    "kind: Deployment\n"
    "metadata:\n"
    "  name: web\n"
    "spec:\n"
    "  template:\n"
    "    spec:\n"
    "      containers:\n"
    "        - name: web\n"
    "          image: app:1.2\n"
    "          envFrom:\n"
    "            - configMapRef: {name: web-config}\n"
    "          env:\n"
    "            - name: DB_PASSWORD\n"
    "              valueFrom:\n"
    "                secretKeyRef:\n"
    "                  name: db-creds\n"
    "                  key: password\n"
    "      volumes:\n"
    "        - name: tls\n"
    "          secret:\n"
    "            secretName: web-tls\n"
    "---\n"
    "# a comment between documents\n"
    "\n"
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata:\n"
    "  name: web\n"
    "spec:\n"
    "  ports: [{port: 80}]\n";

static const char SECRET_YAML[] =
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata:\n"
    "  name: db-creds\n"
    "type: Opaque\n"
    "data:\n"
    "  password: " SECRET_B64 "\n"
    "stringData:\n"
    "  other: |\n"
    "    " SECRET_PLAIN "\n"
    "---\n"
    "kind: Secret\n"
    "apiVersion: v1\n"
    "data: {token: " SECRET_B64 "}\n"
    "metadata: {name: inline}\n";

static void write_tree(const char *root)
{
    put(root, "base/deployment.yaml", BASE_DEPLOY);
    put(root, "base/kustomization.yaml", "resources:\n  - deployment.yaml\n  - secret.yaml\n");
    put(root, "base/secret.yaml", SECRET_YAML);
    put(root, "overlays/dev/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: dev\nnamePrefix: dev-\nresources:\n  - ../../base\n");
    put(root, "overlays/prod/kustomization.yml",
        "namespace: prod\nresources:\n- ../../base/\n- extra.yaml\n");
    put(root, "overlays/prod/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n"
        "data:\n  LEVEL: info\n");
    put(root, "overlays/prod-eu/Kustomization", "nameSuffix: -eu\nnamePrefix: eu-\n"
                                                "resources: [../prod]\n");
    put(root, "charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    put(root, "charts/web/values.yaml", "image:\n  tag: \"1.2\"\nreplicas: 2\n");
    put(root, "charts/web/templates/deploy.yaml", "{{- if .Values.x }}\nkind: {{ .K }}\n");
    put(root, "apps/broken.yaml", "kind: ConfigMap\nmetadata:\n  name: [unclosed\n  x: y\n");
    put(root, "apps/ok.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n"
                             "  namespace: apps\n");
    put(root, ".git-not/ignored.txt", "x");
}

static void git_commit(const char *root, char *hex, size_t cap)
{
    char cmd[1024];
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "cd '%s' && git init -q && git add -A && git -c user.name=t -c user.email=t@t "
             "commit -qm init && git rev-parse HEAD", root);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(hex, (int)cap, p));
    assert_int_equal(pclose(p), 0);
    hex[strcspn(hex, "\n")] = '\0';
    assert_int_equal(strlen(hex), 40);
}

static const tr_locate_doc *find_doc(const tr_locate_index *index, const char *file, int doc)
{
    size_t i;

    for (i = 0; i < tr_locate_index_doc_count(index); i++) {
        const tr_locate_doc *d = tr_locate_index_doc(index, i);

        if (strcmp(d->file, file) == 0 && d->doc_index == doc)
            return d;
    }
    return NULL;
}

static void test_index_records_documents_lines_and_commit(void **state)
{
    char root[64], hex[64];
    tr_locate_index *index = NULL;
    const tr_locate_doc *d;
    tr_error err = {0};
    size_t i;

    (void)state;
    make_root(root, sizeof(root));
    write_tree(root);
    git_commit(root, hex, sizeof(hex));
    assert_int_equal(tr_locate_index_build(&index, root, hex, NULL, &err), 0);
    assert_string_equal(tr_locate_index_commit(index), hex);

    d = find_doc(index, "base/deployment.yaml", 0);
    assert_non_null(d);
    assert_string_equal(d->kind, "Deployment");
    assert_string_equal(d->api_version, "apps/v1");
    assert_string_equal(d->name, "web");
    assert_null(d->namespace_);
    assert_int_equal(d->start_line, 2); /* the leading comment is not the document */
    assert_int_equal(d->end_line, 23);
    d = find_doc(index, "base/deployment.yaml", 1);
    assert_non_null(d);
    assert_string_equal(d->kind, "Service");
    assert_int_equal(d->start_line, 27);
    assert_int_equal(d->end_line, 32);
    d = find_doc(index, "apps/ok.yml", 0);
    assert_non_null(d);
    assert_string_equal(d->namespace_, "apps");
    /* .git and chart templates are not read; nothing from them is indexed */
    for (i = 0; i < tr_locate_index_doc_count(index); i++) {
        assert_null(strstr(tr_locate_index_doc(index, i)->file, "templates/"));
        assert_null(strstr(tr_locate_index_doc(index, i)->file, ".git/"));
    }
    /* the malformed file is named with its line; the others are still there */
    assert_int_equal(tr_locate_index_problem_count(index), 1);
    assert_non_null(strstr(tr_locate_index_problem(index, 0), "apps/broken.yaml:4:"));
    tr_locate_index_free(index);
    remove_root(root);
}

static void test_find_follows_overlays_and_ranks(void **state)
{
    char root[64];
    tr_locate_index *index = NULL;
    tr_locate_match m[8];
    tr_error err = {0};
    size_t n;

    (void)state;
    make_root(root, sizeof(root));
    write_tree(root);
    assert_int_equal(tr_locate_index_build(&index, root, "abc", NULL, &err), 0);

    /* dev overlay: namePrefix dev- and namespace dev on the base Deployment */
    n = tr_locate_find(index, NULL, "Deployment", "dev-web", "dev", m, 8);
    assert_int_equal(n, 2); /* and the Service of the same name, by name only */
    assert_int_equal(m[1].score, TR_LOCATE_SCORE_NAME);
    assert_int_equal(m[1].doc_index, 1);
    assert_string_equal(m[0].file, "base/deployment.yaml");
    assert_int_equal(m[0].doc_index, 0);
    assert_int_equal(m[0].start_line, 2);
    assert_string_equal(m[0].via_overlay_path, "overlays/dev/kustomization.yaml");
    assert_int_equal(m[0].score, TR_LOCATE_SCORE_EXACT);

    /* nested overlay: eu- + web + -eu in prod (namespace from the inner overlay) */
    n = tr_locate_find(index, "overlays/prod-eu", "Service", "eu-web-eu", "prod", m, 8);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].score, TR_LOCATE_SCORE_EXACT);
    assert_int_equal(m[0].doc_index, 1);
    assert_string_equal(m[0].via_overlay_path, "overlays/prod-eu/Kustomization");

    /* restricted to the Argo path: the dev rendering does not count under prod */
    n = tr_locate_find(index, "./overlays/prod/", "Deployment", "dev-web", "dev", m, 8);
    assert_int_equal(n, 0);
    n = tr_locate_find(index, "overlays/prod", "Deployment", "web", "prod", m, 8);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].doc_index, 0);
    assert_string_equal(m[0].via_overlay_path, "overlays/prod/kustomization.yml");

    /* without a path: exact namespace first, then the manifest without namespace, then name */
    n = tr_locate_find(index, "apps", "ConfigMap", "ok", "apps", m, 8);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].score, TR_LOCATE_SCORE_EXACT);
    n = tr_locate_find(index, NULL, "ConfigMap", "ok", "other", m, 8);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].score, TR_LOCATE_SCORE_NAME);
    n = tr_locate_find(index, "base", "Service", "web", "staging", m, 8);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].score, TR_LOCATE_SCORE_DEFAULT_NS);
    assert_null(m[0].via_overlay_path);
    n = tr_locate_find(index, "base", "Deployment", "web", "staging", m, 8);
    assert_int_equal(n, 2); /* the Deployment, then the same-named Service */
    assert_int_equal(m[0].score, TR_LOCATE_SCORE_DEFAULT_NS);
    assert_int_equal(m[0].doc_index, 0);
    assert_int_equal(m[1].score, TR_LOCATE_SCORE_NAME);
    assert_int_equal(tr_locate_find(index, NULL, "Deployment", "missing", "dev", m, 8), 0);
    tr_locate_index_free(index);
    remove_root(root);
}

static void test_excerpt_numbers_lines(void **state)
{
    char root[64];
    char *text = NULL;
    tr_error err = {0};

    (void)state;
    make_root(root, sizeof(root));
    write_tree(root);
    assert_int_equal(tr_locate_excerpt(&text, root, "base/deployment.yaml", 11, 11, 1, 0, &err), 0);
    assert_string_equal(text, "  10 |         - name: web\n"
                              "  11 |           image: app:1.2\n"
                              "  12 |           envFrom:\n");
    tr_free(text);
    assert_int_equal(tr_locate_excerpt(&text, root, "base/deployment.yaml", 1, 32, 0, 120, &err),
                     0);
    assert_true(strlen(text) <= 120);
    assert_non_null(strstr(text, "... (truncated)\n"));
    tr_free(text);
    assert_int_equal(tr_locate_excerpt(&text, root, "../etc/passwd", 1, 1, 0, 0, &err), TR_EINVAL);
    assert_null(text);
    remove_root(root);
}

static void test_excerpt_refuses_symlink_out_of_tree(void **state)
{
    char root[64], link[128];
    char *text = NULL;
    tr_error err = {0};

    (void)state;
    make_root(root, sizeof(root));
    put(root, "a.yaml", "kind: A\n");
    snprintf(link, sizeof(link), "%s/hosts.yaml", root);
    assert_int_equal(symlink("/etc/hosts", link), 0);
    assert_int_equal(tr_locate_excerpt(&text, root, "hosts.yaml", 1, 1, 0, 0, &err), TR_EINVAL);
    assert_non_null(strstr(err.message, "outside the repository"));
    assert_null(text);
    remove_root(root);
}

static int contains(const char *hay, size_t len, const char *needle)
{
    return hay != NULL && memmem(hay, len, needle, strlen(needle)) != NULL;
}

static void test_secret_data_never_in_any_output(void **state)
{
    char root[64];
    tr_locate_index *index = NULL;
    tr_locate_names defined, referenced;
    tr_locate_match m[4];
    tr_error err = {0};
    char *text = NULL;
    size_t n, i;

    (void)state;
    make_root(root, sizeof(root));
    write_tree(root);
    assert_int_equal(tr_locate_index_build(&index, root, "abc", NULL, &err), 0);
    n = tr_locate_find(index, NULL, "Secret", "db-creds", "dev", m, 4);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].start_line, 1);
    assert_int_equal(m[0].end_line, 10);
    assert_int_equal(tr_locate_excerpt(&text, root, m[0].file, 1, 15, 2, 0, &err), 0);
    assert_non_null(strstr(text, "   6 | data:\n   7 |   [secret value redacted]\n"));
    assert_non_null(strstr(text, "  14 | data: [secret value redacted]\n"));
    assert_non_null(strstr(text, "  15 | metadata: {name: inline}\n"));
    assert_false(contains(text, strlen(text), SECRET_B64));
    assert_false(contains(text, strlen(text), SECRET_PLAIN));
    tr_free(text);
    for (i = 0; i < tr_locate_index_doc_count(index); i++) {
        const tr_locate_doc *d = tr_locate_index_doc(index, i);

        assert_false(d->name && contains(d->name, strlen(d->name), "hunter2"));
    }
    assert_int_equal(tr_locate_config_refs(&defined, &referenced, index, "dev", "Secret", &err), 0);
    for (i = 0; i < defined.count; i++) {
        assert_false(contains(defined.items[i].name, strlen(defined.items[i].name), SECRET_B64));
        assert_false(contains(defined.items[i].where, strlen(defined.items[i].where), "hunter2"));
    }
    tr_locate_names_dispose(&defined);
    tr_locate_names_dispose(&referenced);
    tr_locate_index_free(index);
    remove_root(root);
}

static int has_name(const tr_locate_names *names, const char *name, const char *where)
{
    size_t i;

    for (i = 0; i < names->count; i++)
        if (strcmp(names->items[i].name, name) == 0 &&
            (where == NULL || strcmp(names->items[i].where, where) == 0))
            return 1;
    return 0;
}

static void test_config_refs_in_repo_and_live_objects(void **state)
{
    char root[64];
    tr_locate_index *index = NULL;
    tr_locate_names defined, referenced, live;
    tr_error err = {0};
    char *pod_text = slurp(K8S_FIXTURES "pod-crashloopbackoff-multicontainer.json");
    cJSON *items = cJSON_CreateArray();

    (void)state;
    make_root(root, sizeof(root));
    write_tree(root);
    assert_int_equal(tr_locate_index_build(&index, root, "abc", NULL, &err), 0);
    assert_int_equal(tr_locate_config_refs(&defined, &referenced, index, "prod", "Secret", &err),
                     0);
    assert_true(has_name(&defined, "db-creds", "base/secret.yaml:1 Secret/db-creds"));
    assert_true(has_name(&defined, "inline", NULL));
    assert_true(has_name(&defined, "eu-db-creds-eu", NULL)); /* rendered by prod-eu */
    assert_true(has_name(&referenced, "db-creds", "base/deployment.yaml:2 Deployment/web"));
    assert_true(has_name(&referenced, "web-tls", NULL));
    assert_false(has_name(&referenced, "web-config", NULL));
    tr_locate_names_dispose(&defined);
    tr_locate_names_dispose(&referenced);
    assert_int_equal(
        tr_locate_config_refs(&defined, &referenced, index, "prod", "ConfigMap", &err), 0);
    assert_true(
        has_name(&defined, "web-config", "overlays/prod/extra.yaml:1 ConfigMap/web-config"));
    assert_true(has_name(&referenced, "web-config", NULL));
    assert_false(has_name(&defined, "ok", NULL)); /* namespace apps */
    tr_locate_names_dispose(&defined);
    tr_locate_names_dispose(&referenced);
    assert_int_equal(tr_locate_config_refs(&defined, &referenced, index, "x", "Pod", &err),
                     TR_EINVAL);

    memset(&live, 0, sizeof(live));
    cJSON_AddItemToArray(items, parse(pod_text));
    assert_int_equal(tr_locate_config_refs_json(&live, items, "Secret", &err), 0);
    assert_int_equal(live.count, 1);
    assert_string_equal(live.items[0].name, "default-token-4wg24");
    /* a list item carries no kind */
    assert_string_equal(live.items[0].where, "?/code-i-multi-container-7bb85795f4-sbmpc");
    tr_locate_names_dispose(&live);
    assert_int_equal(tr_locate_config_refs_json(&live, items, "ConfigMap", &err), 0);
    assert_int_equal(live.count, 0);
    cJSON_Delete(items);
    tr_free(pod_text);
    tr_locate_index_free(index);
    remove_root(root);
}

static void test_index_of_2000_documents(void **state)
{
    char root[64];
    tr_buf b = TR_BUF_INIT(0);
    tr_locate_index *index = NULL;
    tr_locate_match m[2];
    tr_error err = {0};
    int i;

    (void)state;
    make_root(root, sizeof(root));
    for (i = 0; i < 2000; i++)
        assert_int_equal(tr_buf_printf(&b, "---\n# n %d\napiVersion: v1\nkind: ConfigMap\n"
                                           "metadata:\n  name: cm-%d\n  namespace: ns\n", i, i), 0);
    put(root, "many/all.yaml", b.ptr);
    tr_buf_dispose(&b);
    assert_int_equal(tr_locate_index_build(&index, root, "c", NULL, &err), 0);
    assert_int_equal(tr_locate_index_doc_count(index), 2000);
    assert_int_equal(tr_locate_find(index, "many", "ConfigMap", "cm-1999", "ns", m, 2), 1);
    assert_int_equal(m[0].doc_index, 1999);
    assert_int_equal(m[0].start_line, 1999 * 7 + 3);
    assert_int_equal(m[0].end_line, 1999 * 7 + 7);
    tr_locate_index_free(index);
    remove_root(root);
}

static void test_index_missing_root_is_an_error(void **state)
{
    tr_locate_index *index = NULL;
    tr_error err = {0};

    (void)state;
    assert_int_equal(tr_locate_index_build(&index, "/nonexistent/tree", "c", NULL, &err), TR_EIO);
    assert_null(index);
    assert_non_null(strstr(err.message, "/nonexistent/tree"));
}

/* ------------------------------------------------------------- terraform */

/* The range Terraform printed for the first error diagnostic of a fixture run. */
static void diag_range(const char *jsonl, char *file, size_t cap, int *start, int *end)
{
    char *text = slurp(jsonl), *line, *save = NULL;
    int found = 0;

    for (line = strtok_r(text, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
        cJSON *msg = cJSON_Parse(line);
        const cJSON *range = cJSON_GetObjectItem(cJSON_GetObjectItem(msg, "diagnostic"), "range");

        if (range != NULL) {
            snprintf(file, cap, "%s", cJSON_GetObjectItem(range, "filename")->valuestring);
            *start = cJSON_GetObjectItem(cJSON_GetObjectItem(range, "start"), "line")->valueint;
            *end = cJSON_GetObjectItem(cJSON_GetObjectItem(range, "end"), "line")->valueint;
            found = 1;
        }
        cJSON_Delete(msg);
    }
    tr_free(text);
    assert_true(found);
}

static void copy_fixture(const char *root, const char *name)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "mkdir -p '%s/infra' && cp -r " TF_FIXTURES "%s '%s/infra/'",
             root, name, root);
    assert_int_equal(system(cmd), 0);
}

static void check_tf(const char *root, const char *name, const char *want_path, int want_start,
                     int want_end, const char *want_text)
{
    char file[256], module[128];
    int start = 0, end = 0;
    tr_locate_tf tf;
    tr_error err = {0};
    char jsonl[256];

    snprintf(jsonl, sizeof(jsonl), TF_FIXTURES "%s/apply.jsonl", name);
    diag_range(jsonl, file, sizeof(file), &start, &end);
    snprintf(module, sizeof(module), "./infra/%s/", name);
    assert_int_equal(tr_locate_terraform(&tf, root, module, file, start, end, 0, 0, &err), 0);
    assert_string_equal(tf.path, want_path);
    assert_int_equal(tf.block_start, want_start);
    assert_int_equal(tf.block_end, want_end);
    assert_non_null(strstr(tf.excerpt, want_text));
    tr_locate_tf_dispose(&tf);
}

static void test_terraform_diagnostics_widen_to_block(void **state)
{
    static const char *const names[] = {"module", "syntax", "validation", "provisioner",
                                        "reference"};
    char root[64];
    tr_locate_tf tf;
    tr_error err = {0};
    size_t i;

    (void)state;
    make_root(root, sizeof(root));
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        copy_fixture(root, names[i]);
    check_tf(root, "module", "infra/module/modules/db/main.tf", 2, 10,
             "   6 |       condition     = !endswith(var.instance_size, \".nano\")\n");
    check_tf(root, "syntax", "infra/syntax/main.tf", 1, 4, "   4 | }\n");
    check_tf(root, "validation", "infra/validation/main.tf", 1, 8,
             "   5 |     condition     = var.replicas > 0\n");
    check_tf(root, "provisioner", "infra/provisioner/main.tf", 1, 6,
             "   4 |     command = \"echo 'ERROR: relation \\\"orders\\\" does not exist' >&2; "
             "exit 3\"\n");
    check_tf(root, "reference", "infra/reference/main.tf", 1, 3,
             "   2 |   input = var.image_tag\n");
    assert_int_equal(tr_locate_terraform(&tf, root, "infra/module", "../../../etc/passwd", 1, 1,
                                         0, 0, &err), TR_EINVAL);
    assert_int_equal(tr_locate_terraform(&tf, root, "infra", "nope.tf", 1, 1, 0, 0, &err),
                     TR_ENOTFOUND);
    remove_root(root);
}

static void test_terraform_window_is_capped_and_skips_strings(void **state)
{
    char root[64];
    tr_buf b = TR_BUF_INIT(0);
    tr_locate_tf tf;
    tr_error err = {0};
    int i;

    (void)state;
    make_root(root, sizeof(root));
    assert_int_equal(tr_buf_puts(&b, "locals {\n  a = \"}{ ${x} }\" # }\n  b = <<EOT\n}\nEOT\n"
                                     "  /* } */\n"), 0);
    for (i = 0; i < 200; i++)
        assert_int_equal(tr_buf_printf(&b, "  v%d = %d\n", i, i), 0);
    assert_int_equal(tr_buf_puts(&b, "}\nresource \"x\" \"y\" {\n  z = 1\n}\n"), 0);
    put(root, "main.tf", b.ptr);
    tr_buf_dispose(&b);
    assert_int_equal(tr_locate_terraform(&tf, root, NULL, "main.tf", 205, 205, 0, 0, &err), 0);
    assert_int_equal(tf.block_end - tf.block_start + 1, 80);
    assert_true(tf.block_start <= 205 && tf.block_end >= 205);
    tr_locate_tf_dispose(&tf);
    assert_int_equal(tr_locate_terraform(&tf, root, ".", "main.tf", 209, 209, 0, 0, &err), 0);
    assert_int_equal(tf.block_start, 208); /* braces in strings, heredocs and comments skipped */
    assert_int_equal(tf.block_end, 210);
    tr_locate_tf_dispose(&tf);
    remove_root(root);
}

static void test_buffer_index_parses_one_file(void **state)
{
    static const char yaml[] = "a: &x [1, 2]\nb: *x\n---\n- just\n- a list\n---\nkind: K\n"
                               "metadata: {name: n}\n";
    tr_locate_index *index = NULL;
    tr_error err = {0};

    (void)state;
    assert_int_equal(tr_locate_index_from_buffer(&index, "f.yaml", yaml, sizeof(yaml) - 1,
                                                 &err), 0);
    assert_int_equal(tr_locate_index_doc_count(index), 2); /* the list defines nothing */
    assert_string_equal(tr_locate_index_doc(index, 1)->kind, "K");
    assert_int_equal(tr_locate_index_doc(index, 1)->doc_index, 2);
    assert_int_equal(tr_locate_index_doc(index, 1)->start_line, 7);
    assert_int_equal(tr_locate_index_doc(index, 1)->end_line, 8);
    tr_locate_index_free(index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_argo_tracking_id_names_the_app),
        cmocka_unit_test(test_origin_ignores_tracking_id_of_another_object),
        cmocka_unit_test(test_origin_flux_labels),
        cmocka_unit_test(test_source_argo_single_and_multi_source),
        cmocka_unit_test(test_source_flux_kustomization_and_helmrelease),
        cmocka_unit_test(test_repo_url_forms_match),
        cmocka_unit_test(test_index_records_documents_lines_and_commit),
        cmocka_unit_test(test_find_follows_overlays_and_ranks),
        cmocka_unit_test(test_excerpt_numbers_lines),
        cmocka_unit_test(test_excerpt_refuses_symlink_out_of_tree),
        cmocka_unit_test(test_secret_data_never_in_any_output),
        cmocka_unit_test(test_config_refs_in_repo_and_live_objects),
        cmocka_unit_test(test_index_of_2000_documents),
        cmocka_unit_test(test_index_missing_root_is_an_error),
        cmocka_unit_test(test_terraform_diagnostics_widen_to_block),
        cmocka_unit_test(test_terraform_window_is_capped_and_skips_strings),
        cmocka_unit_test(test_buffer_index_parses_one_file),
    };

    TR_RUN_TESTS("locate", tests);
}
