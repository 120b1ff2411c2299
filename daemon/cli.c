/*
 * cli.c - argument parsing and dispatch for every `triaged` command.
 *
 * Each command parses its own options with getopt_long so that `--help`
 * works everywhere and an unknown option is a usage error (exit 2).
 */
#include "cli.h"
#include "alloc.h"
#include "buf.h"
#include "client.h"
#include "config.h"
#include "daemon.h"
#include "error.h"
#include "kube_explain.h"
#include "log.h"
#include "tf_cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TR_VERSION
#define TR_VERSION "0.0.0"
#endif

static const char usage_main[] =
    "usage: triaged COMMAND [OPTIONS]\n"
    "\n"
    "AI troubleshooting for Kubernetes and Terraform.\n"
    "\n"
    "Commands:\n"
    "  run          [-c FILE]              run the daemon\n"
    "  check-config [-c FILE]              validate the config, print the effective config\n"
    "  version                             print the version\n"
    "  incidents    [--state S] [--json]   list incidents (asks the running daemon)\n"
    "  show ID      [--json]               one incident with its analysis and patch\n"
    "  accept ID                           accept its patch: opens the pull request\n"
    "  reject ID    [--reason TEXT]        reject its patch\n"
    "  explain KIND/NAME [-n NS]           one-shot triage and analysis of one object\n"
    "  chat ID                             follow-up questions on an incident\n"
    "  terraform FILE|-                    one-shot analysis of a `terraform ... -json` log\n"
    "\n"
    "The config file is -c FILE, else $TRIAGED_CONFIG, else /etc/triaged/config.toml.\n"
    "Client commands reach the daemon at --server URL, else at [daemon] listen of the config.\n"
    "Run `triaged COMMAND --help` for a command's options.\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.\n";

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "triaged %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun `triaged %s --help` for usage.\n", cmd);
    return TR_EXIT_USAGE;
}

const char *tr_cli_default_config_path(void);

const char *tr_cli_default_config_path(void)
{
    const char *env = getenv("TRIAGED_CONFIG");

    if (env && *env)
        return env;
    return "/etc/triaged/config.toml";
}

/* Load the config or print why not; returns an exit status. */
static int load_config(tr_config **out, const char *path)
{
    tr_error err = { 0 };

    if (tr_config_load(out, path, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return TR_EXIT_USAGE;
    }
    return TR_EXIT_OK;
}

/* Options shared by commands: -c FILE, --server URL, --json, --help. */
typedef struct cli_opts {
    const char *config_path;
    const char *server;
    const char *state;
    const char *reason;
    const char *ns;
    int json;
    int prompt;
    int help;
} cli_opts;

/* Is name one of the space-separated words in list? */
static int has_word(const char *list, const char *name)
{
    size_t len = strlen(name);
    const char *p = list;

    while ((p = strstr(p, name)) != NULL) {
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return 1;
        p += len;
    }
    return 0;
}

enum { OPT_SERVER = 256, OPT_STATE, OPT_JSON, OPT_REASON, OPT_PROMPT };

static int parse_opts(const char *cmd, int argc, char **argv, const char *allowed,
                      cli_opts *opts)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "server", required_argument, NULL, OPT_SERVER },
        { "state", required_argument, NULL, OPT_STATE },
        { "json", no_argument, NULL, OPT_JSON },
        { "prompt", no_argument, NULL, OPT_PROMPT },
        { "reason", required_argument, NULL, OPT_REASON },
        { "namespace", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    memset(opts, 0, sizeof(*opts));
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "c:n:h", longopts, NULL)) != -1) {
        const char *name = NULL;
        switch (ch) {
        case 'c': name = "c"; opts->config_path = optarg; break;
        case 'n': name = "n"; opts->ns = optarg; break;
        case OPT_SERVER: name = "server"; opts->server = optarg; break;
        case OPT_STATE: name = "state"; opts->state = optarg; break;
        case OPT_JSON: name = "json"; opts->json = 1; break;
        case OPT_PROMPT: name = "prompt"; opts->prompt = 1; break;
        case OPT_REASON: name = "reason"; opts->reason = optarg; break;
        case 'h': opts->help = 1; return TR_EXIT_OK;
        default:
            return usage_error(cmd, "unknown option or missing value: %s", argv[optind - 1]);
        }
        if (!has_word(allowed, name))
            return usage_error(cmd, "option not valid here: %s", argv[optind - 1]);
    }
    if (opts->config_path == NULL)
        opts->config_path = tr_cli_default_config_path();
    return TR_EXIT_OK;
}

static int cmd_run(int argc, char **argv)
{
    static const char help[] =
        "usage: triaged run [-c FILE]\n"
        "Run the daemon: watch Kubernetes and Terraform, open incidents, analyse\n"
        "and notify. Stops cleanly on SIGTERM or SIGINT.\n";
    tr_config *cfg = NULL;
    cli_opts opts;
    int status;

    if ((status = parse_opts("run", argc, argv, "c", &opts)) != TR_EXIT_OK)
        return status;
    if (opts.help) {
        fputs(help, stdout);
        return TR_EXIT_OK;
    }
    if (optind < argc)
        return usage_error("run", "unexpected argument: %s", argv[optind]);
    if ((status = load_config(&cfg, opts.config_path)) != TR_EXIT_OK)
        return status;
    status = tr_daemon_run(cfg, opts.config_path);
    tr_config_free(cfg);
    return status;
}

static int cmd_check_config(int argc, char **argv)
{
    static const char help[] =
        "usage: triaged check-config [-c FILE]\n"
        "Validate the config and print the effective config (defaults filled in,\n"
        "secrets masked). Exit 0 when valid, 2 with FILE:LINE: key: problem when not.\n";
    tr_config *cfg = NULL;
    tr_buf out = TR_BUF_INIT(0);
    cli_opts opts;
    int status;

    if ((status = parse_opts("check-config", argc, argv, "c", &opts)) != TR_EXIT_OK)
        return status;
    if (opts.help) {
        fputs(help, stdout);
        return TR_EXIT_OK;
    }
    if (optind < argc)
        return usage_error("check-config", "unexpected argument: %s", argv[optind]);
    if ((status = load_config(&cfg, opts.config_path)) != TR_EXIT_OK)
        return status;
    if (tr_config_print(cfg, &out) != 0) {
        fprintf(stderr, "triaged check-config: out of memory\n");
        status = TR_EXIT_FAILURE;
    } else {
        printf("# %s: configuration is valid\n%s", opts.config_path, tr_buf_cstr(&out));
    }
    tr_buf_dispose(&out);
    tr_config_free(cfg);
    return status;
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs("usage: triaged version\nPrint the version.\n", stdout);
        return TR_EXIT_OK;
    }
    if (argc > 1)
        return usage_error("version", "unexpected argument: %s", argv[1]);
    printf("triaged %s\n", TR_VERSION);
    return TR_EXIT_OK;
}

/* Commands that talk to a running daemon: see client.c. */
static int cmd_client(const char *cmd, int argc, char **argv, const char *allowed,
                      int want_args, const char *help)
{
    tr_client_request req;
    tr_config *cfg = NULL;
    cli_opts opts;
    int status;

    if ((status = parse_opts(cmd, argc, argv, allowed, &opts)) != TR_EXIT_OK)
        return status;
    if (opts.help) {
        fputs(help, stdout);
        return TR_EXIT_OK;
    }
    if (argc - optind != want_args)
        return usage_error(cmd, want_args ? "expects %s" : "unexpected argument%s",
                           want_args ? "one argument" : "");
    memset(&req, 0, sizeof(req));
    req.command = cmd;
    req.arg = want_args ? argv[optind] : NULL;
    req.server = opts.server;
    req.state = opts.state;
    req.reason = opts.reason;
    req.ns = opts.ns;
    req.json = opts.json;
    req.prompt = opts.prompt;
    /* Without --server the daemon's address and token come from the config. */
    if (opts.server == NULL && (status = load_config(&cfg, opts.config_path)) != TR_EXIT_OK)
        return status;
    status = tr_client_run(&req, cfg);
    tr_config_free(cfg);
    return status;
}

static int cmd_explain(int argc, char **argv)
{
    static const char help[] =
        "usage: triaged explain KIND/NAME [-n NS] [-c FILE]\n"
        "One-shot triage and analysis of one Kubernetes object (pod, deployment,\n"
        "statefulset, daemonset, replicaset, job, cronjob, node, pvc), using the\n"
        "config's cluster and LLM settings; no daemon needed. Exit 0 when analysed or\n"
        "healthy, 1 when the cluster cannot be reached, 2 for an unknown object.\n";
    tr_config *cfg = NULL;
    cli_opts opts;
    int status;

    if ((status = parse_opts("explain", argc, argv, "c n", &opts)) != TR_EXIT_OK)
        return status;
    if (opts.help) {
        fputs(help, stdout);
        return TR_EXIT_OK;
    }
    if (argc - optind != 1)
        return usage_error("explain", "expects %s", "one KIND/NAME");
    if ((status = load_config(&cfg, opts.config_path)) != TR_EXIT_OK)
        return status;
    tr_log_setup(cfg->daemon.log_level, cfg->daemon.log_format);
    status = tr_explain_run(cfg, argv[optind], opts.ns, stdout);
    tr_config_free(cfg);
    return status;
}

static int cmd_terraform(int argc, char **argv)
{
    static const char help[] =
        "usage: triaged terraform FILE|-\n"
        "One-shot analysis of a `terraform init|plan|apply|validate -json` log (FILE, or - for\n"
        "stdin): each error with its file, line and source, the failing resource and the\n"
        "provisioner output. Needs no daemon. Exit 0 when the log was analysed (failed or not),\n"
        "2 when it cannot be read or is not a Terraform log.\n";
    cli_opts opts;
    int status;

    if ((status = parse_opts("terraform", argc, argv, "", &opts)) != TR_EXIT_OK)
        return status;
    if (opts.help) {
        fputs(help, stdout);
        return TR_EXIT_OK;
    }
    if (argc - optind != 1)
        return usage_error("terraform", "expects %s", "one FILE or -");
    return tr_tf_cli_run(argv[optind], stdout);
}

int tr_cli_main(int argc, char **argv)
{
    const char *cmd;
    int status;

    if (argc < 2) {
        fputs(usage_main, stderr);
        return TR_EXIT_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return TR_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0)
        cmd = "version";
    if (tr_alloc_install() != 0) {
        fprintf(stderr, "triaged: cannot initialise libraries\n");
        return TR_EXIT_FAILURE;
    }
    argc--;
    argv++;
    if (strcmp(cmd, "run") == 0)
        status = cmd_run(argc, argv);
    else if (strcmp(cmd, "check-config") == 0)
        status = cmd_check_config(argc, argv);
    else if (strcmp(cmd, "version") == 0)
        status = cmd_version(argc, argv);
    else if (strcmp(cmd, "incidents") == 0)
        status = cmd_client(cmd, argc, argv, "c server state json", 0,
                            "usage: triaged incidents [--state S] [--json] [--server URL] [-c FILE]\n"
                            "List incidents, newest first.\n");
    else if (strcmp(cmd, "show") == 0)
        status = cmd_client(cmd, argc, argv, "c server json prompt", 1,
                            "usage: triaged show ID [--json] [--prompt] [--server URL] [-c FILE]\n"
                            "One incident with its analysis and patch. --prompt prints the exact\n"
                            "(redacted) request sent to the LLM for it, for audit.\n");
    else if (strcmp(cmd, "accept") == 0)
        status = cmd_client(cmd, argc, argv, "c server", 1,
                            "usage: triaged accept ID [--server URL] [-c FILE]\n"
                            "Accept the incident's patch: the daemon opens a pull request.\n");
    else if (strcmp(cmd, "reject") == 0)
        status = cmd_client(cmd, argc, argv, "c server reason", 1,
                            "usage: triaged reject ID [--reason TEXT] [--server URL] [-c FILE]\n"
                            "Reject the incident's patch.\n");
    else if (strcmp(cmd, "explain") == 0)
        status = cmd_explain(argc, argv);
    else if (strcmp(cmd, "chat") == 0)
        status = cmd_client(cmd, argc, argv, "c server json", 1,
                            "usage: triaged chat ID [--json] [--server URL] [-c FILE]\n"
                            "Ask follow-up questions about an incident: each line read is a\n"
                            "question, sent with the incident's evidence, its analysis and the\n"
                            "conversation so far; each answer is printed, with a revised patch\n"
                            "when the model proposes one (it becomes the incident's proposed\n"
                            "patch). Ends at end of input or /quit. Works through a pipe.\n"
                            "--json prints each answer as the API's JSON, one per line.\n"
                            "Exit 0 ok, 1 when the daemon or its LLM is unavailable, 2 for an\n"
                            "unknown incident or a refused question.\n");
    else if (strcmp(cmd, "terraform") == 0)
        status = cmd_terraform(argc, argv);
    else {
        fprintf(stderr, "triaged: unknown command '%s'\n\n%s", cmd, usage_main);
        status = TR_EXIT_USAGE;
    }
    tr_alloc_uninstall();
    return status;
}
