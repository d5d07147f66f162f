// FastCGI management records (requestId 0) that arrive between requests.
#pragma once

namespace lowphp::worker {

// Answers FCGI_GET_VALUES records waiting at the head of `fd` as php-fpm 8.2
// does (only FCGI_MPXS_CONNS=0; the connection stays open), and returns once a
// request record is next. False when the peer closed or sent garbage.
bool answer_management_records(int fd);

} // namespace lowphp::worker
