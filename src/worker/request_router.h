// worker.match: which kind of worker a request belongs to, judged on its
// REQUEST_URI's path before the connection is read (only peeked at), so that
// a request of the other kind can still go to a worker of that kind.
#pragma once

#include <regex.h>
#include <string>
#include <string_view>

#include "lowphp/fastcgi.h"

namespace lowphp::worker {

class RequestRouter {
  public:
    // `pattern`: a POSIX extended regex (checked by the configuration).
    RequestRouter(const std::string& pattern, bool script_worker);
    ~RequestRouter();
    RequestRouter(const RequestRouter&) = delete;
    RequestRouter& operator=(const RequestRouter&) = delete;
    bool ok() const { return ok_; }

    // Whether the request peeked on `conn` is this worker's to serve. A
    // request that was not peeked at (already read with the previous one) or
    // whose params are longer than a peek stays here.
    bool serves_here(const fastcgi::Connection& conn);
    // Whether a request path goes to the worker script.
    bool matches(std::string_view path);

  private:
    regex_t re_;
    bool ok_ = false;
    bool script_worker_;
    std::string path_; // NUL-terminated copy for regexec
};

} // namespace lowphp::worker
