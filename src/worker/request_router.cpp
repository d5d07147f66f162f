#include "request_router.h"

namespace lowphp::worker {

RequestRouter::RequestRouter(const std::string& pattern, bool script_worker)
    : script_worker_(script_worker) {
    ok_ = regcomp(&re_, pattern.c_str(), REG_EXTENDED | REG_NOSUB) == 0;
}

RequestRouter::~RequestRouter() {
    if (ok_) regfree(&re_);
}

bool RequestRouter::matches(std::string_view path) {
    path_.assign(path.substr(0, path.find('?')));
    return regexec(&re_, path_.c_str(), 0, nullptr, 0) == 0;
}

bool RequestRouter::serves_here(const fastcgi::Connection& conn) {
    auto uri = conn.peeked_param("REQUEST_URI");
    if (!uri) return true;
    return matches(*uri) == script_worker_;
}

} // namespace lowphp::worker
