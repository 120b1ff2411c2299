/*
 * fuzz_logwin.c - libFuzzer target for daemon/logwin.c: arbitrary bytes as a
 * log, limits from the first three bytes. Never out of bounds; the output
 * respects max_bytes + TR_LOGWIN_SLACK_BYTES; with no cap and no line limit
 * every error line of the input is in the output.
 */
#include "logwin.h"

#include "buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_buf out = TR_BUF_INIT(0);
    tr_logwin_options opt;
    tr_logwin_stats st;

    if (size < 3)
        return 0;
    memset(&opt, 0, sizeof(opt));
    opt.max_bytes = (size_t)data[0] * 8;
    opt.tail_lines = data[1] % 16;
    opt.before_lines = data[2] % 4;
    opt.after_lines = data[2] / 4 % 8;
    if (tr_logwin_cut(&out, (const char *)data + 3, size - 3, &opt, &st) == 0 &&
        opt.max_bytes > 0 && out.len > opt.max_bytes + TR_LOGWIN_SLACK_BYTES)
        abort();
    tr_buf_clear(&out);
    memset(&opt, 0, sizeof(opt));
    if (tr_logwin_cut(&out, (const char *)data + 3, size - 3, &opt, &st) == 0 &&
        st.lines_omitted != 0)
        abort();
    tr_buf_dispose(&out);
    return 0;
}
