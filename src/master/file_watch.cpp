// worker.watch with inotify: each pattern's directory tree is watched; an
// event whose path matches the pattern starts a quiet period, and the change
// is reported once nothing more came for kQuietMs.
#include "file_watch.h"

#include <cerrno>
#include <climits>
#include <dirent.h>
#include <fnmatch.h>
#include <map>
#include <memory>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include "lowphp/log.h"
#include "lowphp/word_list.h"

namespace lowphp::master {
namespace {

constexpr int kQuietMs = 200;
constexpr size_t kMaxWatches = 8192; // a tree deeper than this is a mistake
constexpr uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                             IN_ATTRIB | IN_DELETE_SELF;

bool is_dir(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The directory a glob's matches are all under: the part before its first
// wildcard, up to the last '/', and up to the nearest directory that exists.
std::string glob_root(const std::string& pattern) {
    size_t wild = pattern.find_first_of("*?[");
    std::string dir = pattern.substr(0, wild == std::string::npos ? pattern.size() : wild);
    if (wild != std::string::npos || !is_dir(dir)) dir = dir.substr(0, dir.rfind('/'));
    while (!dir.empty() && !is_dir(dir))
        dir = dir.substr(0, dir.rfind('/'));
    return dir.empty() ? "/" : dir;
}

} // namespace

bool FileWatch::open() {
    if (fd_) return true;
    fd_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd_) ZLOG_SYSERROR("worker.watch: inotify_init1() failed");
    return static_cast<bool>(fd_);
}

void FileWatch::add_tree(const std::string& dir, size_t rule) {
    if (watches_.size() >= kMaxWatches) {
        ZLOG_WARNING("[pool %s] worker.watch: more than %zu directories, '%s' is not watched",
                     rules_[rule].pool.c_str(), kMaxWatches, dir.c_str());
        return;
    }
    int wd = inotify_add_watch(fd_.get(), dir.c_str(), kEvents | IN_ONLYDIR);
    if (wd < 0) {
        ZLOG_SYSWARNING("[pool %s] worker.watch: unable to watch '%s'", rules_[rule].pool.c_str(),
                        dir.c_str());
        return;
    }
    watches_.push_back({wd, dir, rule});
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
    if (!d) return;
    while (dirent* e = readdir(d.get())) {
        std::string name = e->d_name;
        if (name == "." || name == ".." || name == ".git") continue;
        std::string path = dir == "/" ? "/" + name : dir + "/" + name;
        bool sub = e->d_type == DT_DIR || (e->d_type == DT_UNKNOWN && is_dir(path));
        if (sub) add_tree(path, rule);
    }
}

bool FileWatch::add(const std::string& pool, const std::string& patterns) {
    for (const std::string& p : split_words(patterns)) {
        if (!open()) return false;
        bool whole_dir = p.find_first_of("*?[") == std::string::npos && is_dir(p);
        rules_.push_back({pool, whole_dir ? "" : p});
        std::string root = whole_dir ? p : glob_root(p);
        if (!whole_dir && p.find_first_of("*?[") == std::string::npos && !is_dir(p)) {
            struct stat st;
            if (stat(p.c_str(), &st) != 0)
                ZLOG_WARNING("[pool %s] worker.watch: '%s' does not exist (yet): watching '%s'",
                             pool.c_str(), p.c_str(), root.c_str());
        }
        add_tree(root, rules_.size() - 1);
    }
    return true;
}

bool FileWatch::start(event_base* base, Changed changed) {
    if (!fd_) return true;
    changed_ = std::move(changed);
    read_ev_ = make_event(base, fd_.get(), EV_READ | EV_PERSIST,
                          [this](evutil_socket_t, short) { on_readable(); });
    quiet_ev_ = make_event(base, -1, 0, [this](evutil_socket_t, short) { on_quiet(); });
    read_ev_->add();
    return true;
}

void FileWatch::on_readable() {
    alignas(inotify_event) char buf[16384];
    std::vector<std::pair<std::string, size_t>> new_dirs; // watched after the scan
    for (;;) {
        ssize_t n = read(fd_.get(), buf, sizeof buf);
        if (n <= 0) break;
        for (char* p = buf; p < buf + n;) {
            auto* ev = reinterpret_cast<inotify_event*>(p);
            p += sizeof(inotify_event) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) { // events were lost: something changed
                for (size_t rule = 0; rule < rules_.size(); ++rule)
                    note_change(rules_[rule].pool, "(many files)");
                continue;
            }
            for (auto w = watches_.begin(); w != watches_.end(); ++w) {
                if (w->wd != ev->wd) continue;
                std::string path = ev->len ? w->dir + "/" + ev->name : w->dir;
                const Rule& rule = rules_[w->rule];
                if ((ev->mask & IN_CREATE) && (ev->mask & IN_ISDIR))
                    new_dirs.emplace_back(path, w->rule);
                bool matches =
                    rule.pattern.empty() || fnmatch(rule.pattern.c_str(), path.c_str(), 0) == 0;
                if (matches && !(ev->mask & IN_IGNORED)) note_change(rule.pool, path);
                if (ev->mask & IN_IGNORED) { // the directory is gone
                    watches_.erase(w);
                    break;
                }
            }
        }
    }
    for (const auto& [dir, rule] : new_dirs)
        add_tree(dir, rule);
}

void FileWatch::note_change(const std::string& pool, const std::string& path) {
    pending_.emplace(pool, path); // the first path of the burst names it
    struct timeval quiet = {0, kQuietMs * 1000};
    quiet_ev_->add(&quiet);
}

void FileWatch::on_quiet() {
    std::map<std::string, std::string> changes;
    changes.swap(pending_);
    for (const auto& [pool, path] : changes)
        changed_(pool, path);
}

} // namespace lowphp::master
