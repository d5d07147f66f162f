// The CGI header block of a response, exactly as php-fpm's sapi_cgi_send_headers
// builds it: a Status line when the code is not 200, the script's headers, the
// blank line.
#include <cstdlib>
#include <cstring>
#include <strings.h>

#include "lowphp/headers.h"

namespace lowphp::sapi {
namespace {

bool starts_with_nocase(const std::string& s, const char* prefix) {
    size_t n = strlen(prefix);
    return s.size() > n && strncasecmp(s.c_str(), prefix, n) == 0;
}

// SAPI_CGI_MAX_HEADER_LENGTH: php-fpm formats the status line into 1024 bytes.
std::string cap(std::string s) {
    if (s.size() > 1023) s.resize(1023);
    return s;
}

} // namespace

std::string reason_phrase(int status) {
    // PHP's http_status_map (main/http_status_codes.h).
    static const struct {
        int code;
        const char* text;
    } map[] = {{100, "Continue"},
               {101, "Switching Protocols"},
               {200, "OK"},
               {201, "Created"},
               {202, "Accepted"},
               {203, "Non-Authoritative Information"},
               {204, "No Content"},
               {205, "Reset Content"},
               {206, "Partial Content"},
               {300, "Multiple Choices"},
               {301, "Moved Permanently"},
               {302, "Found"},
               {303, "See Other"},
               {304, "Not Modified"},
               {305, "Use Proxy"},
               {307, "Temporary Redirect"},
               {308, "Permanent Redirect"},
               {400, "Bad Request"},
               {401, "Unauthorized"},
               {402, "Payment Required"},
               {403, "Forbidden"},
               {404, "Not Found"},
               {405, "Method Not Allowed"},
               {406, "Not Acceptable"},
               {407, "Proxy Authentication Required"},
               {408, "Request Timeout"},
               {409, "Conflict"},
               {410, "Gone"},
               {411, "Length Required"},
               {412, "Precondition Failed"},
               {413, "Request Entity Too Large"},
               {414, "Request-URI Too Long"},
               {415, "Unsupported Media Type"},
               {416, "Requested Range Not Satisfiable"},
               {417, "Expectation Failed"},
               {426, "Upgrade Required"},
               {428, "Precondition Required"},
               {429, "Too Many Requests"},
               {431, "Request Header Fields Too Large"},
               {451, "Unavailable For Legal Reasons"},
               {500, "Internal Server Error"},
               {501, "Not Implemented"},
               {502, "Bad Gateway"},
               {503, "Service Unavailable"},
               {504, "Gateway Timeout"},
               {505, "HTTP Version Not Supported"},
               {506, "Variant Also Negotiates"},
               {511, "Network Authentication Required"}};
    for (const auto& e : map)
        if (e.code == status) return e.text;
    return "";
}

namespace {

bool is_status_header(const std::string& h) {
    return starts_with_nocase(h, "Status:");
}

// The status line php-fpm writes first, or "" when it writes none because the
// script set its own Status: header. `response_status` becomes the code the
// line carries (it decides the 304 Content-Type drop).
std::string status_line(const ResponseHead& head, int& response_status) {
    if (!head.nph && head.status == 200) return ""; // 200 goes unsaid, unless cgi.nph
    const std::string& sl = head.status_line;
    size_t sp = sl.find(' ');
    if (head.rfc2616_headers && !sl.empty()) { // the HTTP/1.x line itself
        if (sp != std::string::npos) response_status = atoi(sl.c_str() + sp + 1);
        return cap(sl);
    }
    if (sp != std::string::npos && sp >= 5 && strncasecmp(sl.c_str(), "HTTP/", 5) == 0) {
        response_status = atoi(sl.c_str() + sp + 1);
        return cap("Status:" + sl.substr(sp)); // keeps the script's reason phrase
    }
    for (const auto& h : head.headers)
        if (is_status_header(h)) return "";
    std::string reason = reason_phrase(head.status);
    return "Status: " + std::to_string(head.status) + (reason.empty() ? "" : " " + reason);
}

} // namespace

std::string encode_head(const ResponseHead& head) {
    int response_status = head.status;
    std::string out = status_line(head, response_status);
    // Once a status line went out, the script's Status: headers are dropped;
    // otherwise the first one is kept, in its place.
    bool ignore_status = !out.empty();
    if (ignore_status) out += "\r\n";
    for (const auto& h : head.headers) {
        if (h.empty()) continue; // an empty line would end the block early
        if (is_status_header(h)) {
            if (ignore_status) continue;
            ignore_status = true;
        } else if (response_status == 304 && starts_with_nocase(h, "Content-Type:")) {
            continue; // a 304 carries no body, so no Content-Type
        }
        out.append(h).append("\r\n");
    }
    out.append("\r\n");
    return out;
}

} // namespace lowphp::sapi
