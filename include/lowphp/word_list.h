// Lists written as words in one directive value ("a, b c"): listen.acl_users,
// worker.watch, worker.keep_ini, disable_functions...
#pragma once

#include <string>
#include <vector>

namespace lowphp {

// The words of `list`, split on any of `separators` (runs of them count as one).
inline std::vector<std::string> split_words(const std::string& list,
                                            const char* separators = ", \t") {
    std::vector<std::string> out;
    size_t pos = 0;
    while ((pos = list.find_first_not_of(separators, pos)) != std::string::npos) {
        size_t end = list.find_first_of(separators, pos);
        out.push_back(list.substr(pos, end - pos));
        pos = end;
    }
    return out;
}

} // namespace lowphp
