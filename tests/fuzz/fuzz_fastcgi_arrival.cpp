// fastcgi::request_arrival(): has a request arrived, judged on peeked bytes.
// Besides ASan/UBSan: only no bytes is Nothing, and more bytes never take
// back a Ready (a worker committed on a prefix must be right on the whole),
// except after records that reading answers or skips and then waits
// (GET_VALUES, empty STDIN): there the worker lets the connection go again.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lowphp/fastcgi.h"

namespace fcgi = lowphp::fastcgi;

namespace {

// Only whole GET_VALUES and empty STDIN records.
bool only_skipped(std::string_view bytes) {
    while (!bytes.empty()) {
        if (bytes.size() < fcgi::kHeaderSize) return false;
        auto h = fcgi::parse_header(reinterpret_cast<const unsigned char*>(bytes.data()));
        size_t len = fcgi::kHeaderSize + h.content_length + h.padding;
        bool skipped = h.version >= 1 && ((h.type == fcgi::kStdin && h.content_length == 0) ||
                                          h.type == fcgi::kGetValues);
        if (!skipped || bytes.size() < len) return false;
        bytes.remove_prefix(len);
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view all(reinterpret_cast<const char*>(data), size);
    std::string scratch;
    for (size_t bound : {size_t{0}, size_t{1024}, SIZE_MAX}) {
        fcgi::Arrival whole = fcgi::request_arrival(all, bound, scratch);
        if ((whole == fcgi::Arrival::Nothing) != all.empty()) abort();
        for (size_t cut : {size / 2, size > 0 ? size - 1 : 0}) {
            std::string_view prefix = all.substr(0, cut);
            fcgi::Arrival part = fcgi::request_arrival(prefix, bound, scratch);
            if (part == fcgi::Arrival::Ready && whole != fcgi::Arrival::Ready &&
                !only_skipped(prefix))
                abort();
        }
    }
    return 0;
}
