/* Name-service functions wasi-libc declares but does not define. A guest of wasmbuild has
 * no network, so every look-up fails the way a resolver with no answer does; CPython's
 * socket module (which `email`, `importlib.metadata`, `http` and others import) links
 * against them. Built into the bundle's python.wasm by build.sh. */
#include <netdb.h>
#include <stddef.h>

static int wasmbuild_h_errno;

int *__h_errno_location(void) {
    return &wasmbuild_h_errno;
}

const char *hstrerror(int code) {
    (void)code;
    return "Name resolution is not available (no network in the sandbox)";
}

struct hostent *gethostbyname(const char *name) {
    (void)name;
    wasmbuild_h_errno = HOST_NOT_FOUND;
    return NULL;
}

struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type) {
    (void)addr;
    (void)len;
    (void)type;
    wasmbuild_h_errno = HOST_NOT_FOUND;
    return NULL;
}

struct servent *getservbyname(const char *name, const char *proto) {
    (void)name;
    (void)proto;
    return NULL;
}

struct servent *getservbyport(int port, const char *proto) {
    (void)port;
    (void)proto;
    return NULL;
}

struct protoent *getprotobyname(const char *name) {
    (void)name;
    return NULL;
}
