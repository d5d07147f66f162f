// Sanitizer builds only: PHP loads extensions (opcache, apcu, ...) with
// RTLD_DEEPBIND, which AddressSanitizer refuses. Defining dlopen in the
// executable interposes it for libphp; the flag is dropped and the call goes
// on to the next dlopen (ASan's interceptor, then libc's).
#include <dlfcn.h>

extern "C" void* dlopen(const char* file, int mode) {
    using DlopenFn = void* (*)(const char*, int);
    static DlopenFn next = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"));
    return next(file, mode & ~RTLD_DEEPBIND);
}
