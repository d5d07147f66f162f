// Encoding of a PHP response's status and headers into the CGI header block that
// goes out on FCGI_STDOUT, exactly as php-fpm's sapi_cgi_send_headers writes it.
#pragma once

#include <string>
#include <vector>

namespace lowphp::sapi {

struct ResponseHead {
    int status = 200;        // SG(sapi_headers).http_response_code
    std::string status_line; // SG(sapi_headers).http_status_line ("HTTP/1.1 404 Not Found") or ""
    std::vector<std::string> headers; // header lines as PHP holds them ("Content-type: text/html")
    bool rfc2616_headers = false;     // cgi.rfc2616_headers
    bool nph = false;                 // cgi.nph
};

// Reason phrase php-fpm uses for a status code ("Not Found"), or "" when unknown.
std::string reason_phrase(int status);

// The full header block, ending in the blank line ("...\r\n\r\n").
std::string encode_head(const ResponseHead& head);

} // namespace lowphp::sapi
