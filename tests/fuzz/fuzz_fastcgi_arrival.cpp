// fastcgi::request_arrival(): has a request arrived, judged on peeked bytes.
// Besides ASan/UBSan: only no bytes is Nothing, and more bytes never take
// back a Ready (a worker committed on a prefix must be right on the whole).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lowphp/fastcgi.h"

namespace fcgi = lowphp::fastcgi;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view all(reinterpret_cast<const char*>(data), size);
    for (size_t bound : {size_t{0}, size_t{1024}, SIZE_MAX}) {
        fcgi::Arrival whole = fcgi::request_arrival(all, bound);
        if ((whole == fcgi::Arrival::Nothing) != all.empty()) abort();
        for (size_t cut : {size / 2, size > 0 ? size - 1 : 0}) {
            fcgi::Arrival part = fcgi::request_arrival(all.substr(0, cut), bound);
            if (part == fcgi::Arrival::Ready && whole != fcgi::Arrival::Ready) abort();
        }
    }
    return 0;
}
