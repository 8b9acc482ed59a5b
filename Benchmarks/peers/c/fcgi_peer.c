/*
 * The libfcgi reference peer for scripts/bench: the classic single-threaded
 * FCGX_Accept_r loop, answering the probe's benchmark endpoints
 * (/hello, /echo, /big?bytes=, /count), routed on the end of
 * SCRIPT_NAME + PATH_INFO like gateway-probe.
 *
 *   cc -O2 -o fcgi-peer fcgi_peer.c -lfcgi
 *   fcgi-peer /path/to/socket
 */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char chunk[64 * 1024];

static const char *endpoint(FCGX_ParamArray envp, char *scratch, size_t size) {
    const char *script = FCGX_GetParam("SCRIPT_NAME", envp);
    const char *info = FCGX_GetParam("PATH_INFO", envp);
    snprintf(scratch, size, "%s%s", script ? script : "", info ? info : "");
    const char *slash = strrchr(scratch, '/');
    return slash ? slash + 1 : scratch;
}

static long long query_integer(FCGX_ParamArray envp, const char *name, long long fallback) {
    const char *query = FCGX_GetParam("QUERY_STRING", envp);
    size_t length = strlen(name);
    for (const char *p = query; p && *p;) {
        if (strncmp(p, name, length) == 0 && p[length] == '=') return atoll(p + length + 1);
        p = strchr(p, '&');
        if (p) p++;
    }
    return fallback;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
        return 2;
    }
    unlink(argv[1]);
    if (FCGX_Init() != 0) return 1;
    int listener = FCGX_OpenSocket(argv[1], 1024);
    if (listener < 0) {
        perror("FCGX_OpenSocket");
        return 1;
    }
    chmod(argv[1], 0666);
    memset(chunk, 'x', sizeof chunk);

    FCGX_Request request;
    FCGX_InitRequest(&request, listener, 0);
    char path[4096];
    while (FCGX_Accept_r(&request) >= 0) {
        const char *name = endpoint(request.envp, path, sizeof path);
        if (strcmp(name, "hello") == 0) {
            FCGX_PutS("Content-Type: text/plain\r\n\r\nHello, world!", request.out);
        } else if (strcmp(name, "echo") == 0) {
            FCGX_PutS("Content-Type: application/octet-stream\r\n\r\n", request.out);
            int n;
            while ((n = FCGX_GetStr(chunk, sizeof chunk, request.in)) > 0) FCGX_PutStr(chunk, n, request.out);
            memset(chunk, 'x', sizeof chunk);
        } else if (strcmp(name, "count") == 0) {
            long long total = 0;
            int n;
            while ((n = FCGX_GetStr(chunk, sizeof chunk, request.in)) > 0) total += n;
            memset(chunk, 'x', sizeof chunk);
            FCGX_FPrintF(request.out, "Content-Type: text/plain\r\n\r\n%lld", total);
        } else if (strcmp(name, "big") == 0) {
            long long left = query_integer(request.envp, "bytes", 64LL << 20);
            FCGX_FPrintF(request.out, "Content-Type: application/octet-stream\r\nContent-Length: %lld\r\n\r\n", left);
            while (left > 0) {
                int n = left < (long long)sizeof chunk ? (int)left : (int)sizeof chunk;
                if (FCGX_PutStr(chunk, n, request.out) < 0) break;
                left -= n;
            }
        } else {
            FCGX_PutS("Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot found\n", request.out);
        }
        FCGX_Finish_r(&request);
    }
    return 0;
}
