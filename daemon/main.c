/* main.c - the triaged binary: everything happens in cli.c. */
#include "cli.h"

int main(int argc, char **argv)
{
    return tr_cli_main(argc, argv);
}
