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
    } map[] = {{100, "Continue"}, {101, "Switching Protocols"}, {200, "OK"}, {201, "Created"},
               {202, "Accepted"}, {203, "Non-Authoritative Information"}, {204, "No Content"},
               {205, "Reset Content"}, {206, "Partial Content"}, {300, "Multiple Choices"},
               {301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
               {304, "Not Modified"}, {305, "Use Proxy"}, {307, "Temporary Redirect"},
               {308, "Permanent Redirect"}, {400, "Bad Request"}, {401, "Unauthorized"},
               {402, "Payment Required"}, {403, "Forbidden"}, {404, "Not Found"},
               {405, "Method Not Allowed"}, {406, "Not Acceptable"},
               {407, "Proxy Authentication Required"}, {408, "Request Timeout"},
               {409, "Conflict"}, {410, "Gone"}, {411, "Length Required"},
               {412, "Precondition Failed"}, {413, "Request Entity Too Large"},
               {414, "Request-URI Too Long"}, {415, "Unsupported Media Type"},
               {416, "Requested Range Not Satisfiable"}, {417, "Expectation Failed"},
               {426, "Upgrade Required"}, {428, "Precondition Required"},
               {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
               {451, "Unavailable For Legal Reasons"}, {500, "Internal Server Error"},
               {501, "Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
               {504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
               {506, "Variant Also Negotiates"}, {511, "Network Authentication Required"}};
    for (const auto& e : map)
        if (e.code == status) return e.text;
    return "";
}

std::string encode_head(const ResponseHead& head) {
    std::string out;
    bool ignore_status = false;
    int response_status = head.status;
    if (head.nph || head.status != 200) {
        bool has_status = false;
        std::string line;
        size_t sp = head.status_line.find(' ');
        if (head.rfc2616_headers && !head.status_line.empty()) {
            line = cap(head.status_line);
            if (sp != std::string::npos) response_status = atoi(head.status_line.c_str() + sp + 1);
        } else if (sp != std::string::npos && sp >= 5 &&
                   strncasecmp(head.status_line.c_str(), "HTTP/", 5) == 0) {
            line = cap("Status:" + head.status_line.substr(sp));
            response_status = atoi(head.status_line.c_str() + sp + 1);
        } else {
            for (const auto& h : head.headers)
                if (starts_with_nocase(h, "Status:")) has_status = true;
            if (!has_status) {
                std::string reason = reason_phrase(head.status);
                line = "Status: " + std::to_string(head.status) + (reason.empty() ? "" : " " + reason);
            }
        }
        if (!has_status) {
            out += line + "\r\n";
            ignore_status = true;
        }
    }
    for (const auto& h : head.headers) {
        if (h.empty()) continue; // prevents a premature blank line
        if (starts_with_nocase(h, "Status:")) {
            if (!ignore_status) {
                ignore_status = true;
                out += h + "\r\n";
            }
        } else if (response_status == 304 && starts_with_nocase(h, "Content-Type:")) {
            continue;
        } else {
            out += h + "\r\n";
        }
    }
    out += "\r\n";
    return out;
}

} // namespace lowphp::sapi
