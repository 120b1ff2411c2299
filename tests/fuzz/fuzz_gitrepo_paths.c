/*
 * fuzz_gitrepo_paths.c - libFuzzer target for the inputs of the GitOps
 * repository that come from outside (an LLM patch, the config): a file path
 * read and walked in a real clone (tr_gitrepo_read_file and
 * tr_gitrepo_file_history, path validation and libgit2's tree lookup) and a
 * commit author "Name <mail>" (parsed before anything is written; the
 * repository given to that call does not exist, so nothing is).
 *
 * Input: PATH '\n' AUTHOR. A path that escapes the tree ("..", absolute,
 * ".git") must be refused, never read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "gitrepo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char repo_dir[64];

static void remove_repo(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", repo_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_gitrepo_paths: could not remove %s\n", repo_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char cmd[512];

    (void)argc;
    (void)argv;
    snprintf(repo_dir, sizeof(repo_dir), "/tmp/fuzz_gitrepo.XXXXXX");
    if (!mkdtemp(repo_dir) || tr_gitrepo_global_init(NULL) != 0)
        abort();
    snprintf(cmd, sizeof(cmd),
             "cd %s && git init -q . && mkdir -p apps/web && printf 'a: 1\\n' > apps/web/d.yaml "
             "&& printf 'x\\n' > README && git add -A && git -c user.name=F "
             "-c user.email=f@x commit -qm one && printf 'a: 2\\n' > apps/web/d.yaml && "
             "git -c user.name=F -c user.email=f@x commit -qam two",
             repo_dir);
    if (system(cmd) != 0)
        abort();
    atexit(remove_repo);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *newline = memchr(data, '\n', size);
    size_t path_len = newline ? (size_t)(newline - data) : size;
    char *path = tr_strndup((const char *)data, path_len);
    char *author = newline ? tr_strndup((const char *)newline + 1, size - path_len - 1) : NULL;
    tr_gitrepo_file file = { NULL, "x", 1 };
    tr_error err = { 0 };
    cJSON *history = NULL;
    char *content = NULL;
    size_t len = 0;
    int rc;

    if (!path || (newline && !author))
        goto cleanup;
    rc = tr_gitrepo_read_file(repo_dir, NULL, path, 4096, &content, &len, &err);
    if (rc == 0 && (strstr(path, "..") || path[0] == '/' || strstr(path, ".git")))
        abort(); /* read something outside the tree */
    if (rc == 0 && (!content || content[len] != '\0'))
        abort();
    if (tr_gitrepo_file_history(repo_dir, path, 2, 128, &history, &err) == 0 && !history)
        abort();
    file.path = path;
    rc = tr_gitrepo_commit_files("/nonexistent/fuzz_gitrepo", "HEAD", "b", &file, 1,
                                 author ? author : "", "m", NULL, &err);
    if (rc == 0)
        abort(); /* there is no repository there */
cleanup:
    cJSON_Delete(history);
    tr_free(content);
    tr_free(author);
    tr_free(path);
    return 0;
}
