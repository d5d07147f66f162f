// worker.watch: inotify on the files a worker-mode pool's app is made of. A
// change calls back once per burst (editors and deploys write many files).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lowphp/event.h"
#include "lowphp/unique_fd.h"

namespace lowphp::master {

class FileWatch {
  public:
    // Called, once per burst, for each pool whose files changed in it, with
    // the first changed path.
    using Changed = std::function<void(const std::string& pool, const std::string& path)>;

    // `patterns`: worker.watch's list (spaces or commas): a directory (every
    // file below it) or a glob ("/srv/app/src/*.php", `*` also crosses '/').
    // False when inotify cannot be set up; a pattern matching nothing is
    // logged and watched from its nearest existing directory.
    bool add(const std::string& pool, const std::string& patterns);
    bool start(event_base* base, Changed changed);

  private:
    struct Watch {
        int wd;
        std::string dir;
        size_t rule; // index in rules_
    };
    struct Rule {
        std::string pool;
        std::string pattern; // "" for a whole directory
    };
    bool open();
    void add_tree(const std::string& dir, size_t rule);
    void on_readable();
    void on_quiet();
    void note_change(const std::string& pool, const std::string& path);

    UniqueFd fd_;
    std::vector<Rule> rules_;
    std::vector<Watch> watches_;
    EventPtr read_ev_, quiet_ev_;
    Changed changed_;
    std::map<std::string, std::string> pending_; // pool -> first changed path
};

} // namespace lowphp::master
