// lowphp-fpm --migrate: php-fpm.conf + pool files -> lowphp configuration.
// The source is loaded with config::load (php-fpm's own checks and values),
// which also keeps every line it read; a line-level pass over those copies
// each into the section it belongs to, so comments, order and spelling
// survive, and rewrites only the directives that must differ for both
// servers to run side by side.
#include "lowphp/migrate.h"
#include "lowphp/exit_codes.h"
#include "lowphp/log.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <strings.h>
#include <unistd.h>

namespace lowphp::migrate {
namespace {

// A directive's name, case-insensitive as php-fpm's tables match it.
bool is(const config::SourceLine& l, const char* name) {
    return strcasecmp(l.name.c_str(), name) == 0;
}

std::string basename_of(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A listen address php-fpm holds, and the one lowphp-fpm takes instead.
struct ListenMap {
    std::string run_dir;
    std::set<std::string> used;

    std::string unix_path(const std::string& from, const std::string& pool) {
        std::string base = basename_of(from);
        if (base == "php8.2-fpm.sock" || base == "php-fpm.sock" || base == "php-fpm8.2.sock") {
            base = "lowphp-fpm.sock";
        } else {
            size_t at = base.find("php8.2-fpm");
            if (at != std::string::npos) base.replace(at, strlen("php8.2-fpm"), "lowphp-fpm");
        }
        std::string to = run_dir + "/" + base;
        if (used.count(to)) to = run_dir + "/" + pool + ".sock";
        for (int n = 2; used.count(to); ++n)
            to = run_dir + "/" + pool + "-" + std::to_string(n) + ".sock";
        return to;
    }

    std::string tcp(const std::string& from) {
        size_t colon = from.rfind(':');
        std::string host = colon == std::string::npos ? "" : from.substr(0, colon + 1);
        int port = atoi(from.c_str() + (colon == std::string::npos ? 0 : colon + 1));
        int step = port + 1000 <= 65535 ? 1000 : -1000;
        std::string to;
        for (int p = port + step; p > 0 && p <= 65535; p += step > 0 ? 1 : -1) {
            to = host + std::to_string(p);
            if (!used.count(to)) break;
        }
        return to;
    }

    std::string map(const std::string& from, const std::string& pool) {
        std::string to = from.empty() || from[0] == '/' ? unix_path(from, pool) : tcp(from);
        used.insert(to);
        return to;
    }
};

// Line-level pass over the lines config::load kept: every line lands in the
// section it belongs to, include= files inline (as php-fpm reads them: an
// included file continues the current section until it opens its own).
struct Reader {
    const Options& opts;
    const config::Config& cfg;
    Plan& plan;
    ListenMap listens;
    std::map<std::string, std::string> new_listen, new_status_listen; // pool -> address
    Section* current = nullptr;
    std::string pending; // comments and blank lines, given to the next section or entry

    void flush_pending() {
        if (current) current->text += pending;
        pending.clear();
    }

    Reader(const Options& o, const config::Config& c, Plan& p) : opts(o), cfg(c), plan(p) {
        listens.run_dir = o.run_dir;
    }

    Section& pool_section(const std::string& name) {
        for (auto& s : plan.pools)
            if (s.name == name) return s;
        plan.pools.push_back({});
        plan.pools.back().name = name;
        return plan.pools.back();
    }

    const config::PoolConfig* pool_config(const std::string& name) const {
        for (const auto& p : cfg.pools)
            if (p.name == name) return &p;
        return nullptr;
    }

    void note_file(Section& s, const std::string& file) {
        if (std::find(s.files.begin(), s.files.end(), file) == s.files.end())
            s.files.push_back(file);
    }

    void changed(Section& s, const std::string& line_name, const std::string& from,
                 const std::string& to, const std::string& why) {
        s.text += "; lowphp-fpm --migrate: " + line_name + " was " + from + "\n";
        s.text += line_name + " = " + to + "\n";
        for (const auto& c : s.changed)
            if (c.directive == line_name && c.to == to) return;
        s.changed.push_back({line_name, from, to, why});
    }

    void global_entry(const config::SourceLine& l) {
        Section& g = plan.global;
        if (is(l, "pid")) {
            changed(g, "pid", l.value, opts.run_dir + "/lowphp-fpm.pid",
                    "php-fpm writes its pid there; both servers run side by side");
        } else if (is(l, "error_log") && l.value != "syslog") {
            changed(g, "error_log", l.value, opts.error_log,
                    "a log of its own, rotated by /etc/logrotate.d/lowphp-fpm");
        } else if (is(l, "syslog.ident") && cfg.global.error_log == "syslog") {
            changed(g, "syslog.ident", l.value, "lowphp-fpm",
                    "tells lowphp-fpm's lines from php-fpm's");
        } else {
            g.text += l.text + "\n";
            g.unchanged.emplace_back(l.written_name, l.written_value);
        }
    }

    void pool_entry(Section& s, const config::SourceLine& l) {
        const config::PoolConfig* p = pool_config(s.name);
        if (!opts.keep_listen && p && (is(l, "listen") || is(l, "pm.status_listen"))) {
            bool status = is(l, "pm.status_listen");
            const char* name = status ? "pm.status_listen" : "listen";
            const std::string& from = status ? p->pm_status_listen : p->listen;
            auto& table = status ? new_status_listen : new_listen;
            if (!table.count(s.name))
                table[s.name] = listens.map(from, s.name + (status ? "_status" : ""));
            const std::string& to = table[s.name];
            std::string why =
                from[0] == '/'
                    ? "php-fpm binds " + from +
                          "; both servers run side by side (nginx: fastcgi_pass unix:" + to + ";)"
                    : "php-fpm binds " + from +
                          "; both servers run side by side (nginx: fastcgi_pass " + to + ";)";
            changed(s, name, from, to, why);
            return;
        }
        s.text += l.text + "\n";
        s.unchanged.emplace_back(l.written_name, l.written_value);
    }

    void section(const config::SourceLine& l) {
        bool global = strcasecmp(l.name.c_str(), "global") == 0;
        current = global ? &plan.global : &pool_section(l.name);
        note_file(*current, l.file);
        flush_pending();
        if (!global) current->text += l.text + "\n"; // the written file has its own [global]
    }

    void entry(const config::SourceLine& l) {
        if (is(l, "include")) return; // the loader followed it: its files come as Opened
        note_file(*current, l.file);
        flush_pending();
        if (current == &plan.global)
            global_entry(l);
        else
            pool_entry(*current, l);
    }

    void read(const config::SourceLine& l) {
        if (l.kind == config::SourceLine::Section) return section(l);
        if (l.kind == config::SourceLine::Opened) {
            flush_pending();
            if (current) current->text += "; lowphp-fpm --migrate: from " + l.file + "\n";
            return;
        }
        if (!current) current = &plan.global;
        if (l.kind == config::SourceLine::Text)
            pending += l.text + "\n";
        else
            entry(l);
    }
};

std::string now_text() {
    char buf[64];
    time_t t = time(nullptr);
    struct tm tm_utc;
    gmtime_r(&t, &tm_utc);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm_utc);
    return buf;
}

bool write_file(const std::string& path, const std::string& text, std::string& error) {
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        if (!out || !(out << text) || !out.flush()) {
            error = "unable to write " + tmp + log::errno_suffix(errno);
            return false;
        }
    }
    if (rename(tmp.c_str(), path.c_str()) < 0) {
        error = "unable to rename " + tmp + log::errno_suffix(errno);
        return false;
    }
    return true;
}

} // namespace

Plan plan(const Options& opts) {
    Plan result;
    config::ParseOptions po;
    po.prefix = opts.prefix;
    po.default_prefix = opts.prefix;
    po.keep_source = true;
    config::ParseResult parsed = config::load(opts.source, po);
    result.messages = parsed.messages;
    if (!parsed.config) return result;
    result.global.name = "global";
    Reader r(opts, *parsed.config, result);
    for (const auto& line : parsed.source)
        r.read(line);
    r.flush_pending();
    Section& g = result.global;
    bool has_error_log = false;
    for (const auto& c : g.changed)
        has_error_log |= c.directive == "error_log";
    for (const auto& u : g.unchanged)
        has_error_log |= u.first == "error_log";
    if (!has_error_log && parsed.config->global.error_log != "syslog") {
        g.text += "error_log = " + opts.error_log + "\n";
        g.changed.push_back({"error_log", "(not set: log/php-fpm.log under the prefix)",
                             opts.error_log,
                             "a log of its own, rotated by /etc/logrotate.d/lowphp-fpm"});
    }
    g.text += "include=" + opts.target_dir + "/pool.d/*.conf\n";
    g.changed.push_back({"include", "the php-fpm pool files", opts.target_dir + "/pool.d/*.conf",
                         "one file per pool, written by --write"});
    for (auto& s : result.pools) {
        const config::PoolConfig* p = r.pool_config(s.name);
        if (!p) continue;
        std::string ini = p->php_ini.empty()
                              ? "/etc/php/8.2/fpm/php.ini (as php-fpm, unless -c or PHPRC)"
                              : p->php_ini;
        s.notes.push_back("php.ini: " + ini +
                          "; this pool starts PHP on its own (own opcache, APCu)");
        if (s.changed.empty() && !opts.keep_listen)
            s.notes.push_back("listen " + p->listen + " kept");
    }
    result.ok = true;
    return result;
}

std::string report(const Plan& plan, const Options& opts) {
    std::ostringstream out;
    out << "lowphp-fpm --migrate " << opts.source << "\n";
    auto section = [&](const Section& s, const std::string& title) {
        out << "\n" << title;
        if (!s.files.empty()) {
            out << " (";
            for (size_t i = 0; i < s.files.size(); ++i)
                out << (i ? ", " : "") << s.files[i];
            out << ")";
        }
        out << "\n";
        out << "  carried over unchanged (" << s.unchanged.size() << "):\n";
        for (const auto& [name, value] : s.unchanged)
            out << "    " << name << " = " << value << "\n";
        out << "  changed (" << s.changed.size() << "):\n";
        for (const auto& c : s.changed)
            out << "    " << c.directive << ": " << c.from << " -> " << c.to
                << "\n      why: " << c.why << "\n";
        for (const auto& n : s.notes)
            out << "  note: " << n << "\n";
    };
    section(plan.global, "[global]");
    for (const auto& p : plan.pools)
        section(p, "[pool " + p.name + "]");
    out << "\nEvery php-fpm directive is understood by lowphp-fpm; only the values above change.\n";
    return out.str();
}

std::string write(const Plan& plan, const std::string& dir, std::vector<std::string>& moved) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir + "/pool.d", ec);
    if (ec) return "unable to create " + dir + "/pool.d: " + ec.message();
    std::map<std::string, std::string> files;
    std::string header = "; Written by lowphp-fpm --migrate on " + now_text() + ".\n";
    files[dir + "/lowphp-fpm.conf"] = header + "[global]\n" + plan.global.text;
    for (const auto& p : plan.pools) {
        if (p.name.empty() || p.name.find('/') != std::string::npos || p.name[0] == '.')
            return "pool name '" + p.name + "' cannot name a file in " + dir + "/pool.d";
        std::string from;
        for (const auto& f : p.files)
            from += (from.empty() ? "" : ", ") + f;
        files[dir + "/pool.d/" + p.name + ".conf"] =
            header + "; pool " + p.name + " from " + from + "\n" + p.text;
    }
    std::set<std::string> stale;
    for (const auto& e : fs::directory_iterator(dir + "/pool.d", ec))
        if (e.path().extension() == ".conf") stale.insert(e.path().string());
    if (fs::exists(dir + "/lowphp-fpm.conf")) stale.insert(dir + "/lowphp-fpm.conf");
    for (const auto& old : stale) {
        std::string to = old + ".before-migrate";
        if (rename(old.c_str(), to.c_str()) < 0)
            return "unable to rename " + old + log::errno_suffix(errno);
        moved.push_back(old + " -> " + to);
    }
    std::string error;
    for (const auto& [path, text] : files)
        if (!write_file(path, text, error)) return error;
    return "";
}

int main(int argc, char** argv) {
    Options opts;
    std::string write_dir;
    bool bad = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 < argc)
                out = argv[++i];
            else
                bad = true;
        };
        if (a == "--migrate")
            value(opts.source);
        else if (a == "--write")
            value(write_dir);
        else if (a == "-p" || a == "--prefix")
            value(opts.prefix);
        else if (a == "--run-dir")
            value(opts.run_dir);
        else if (a == "--error-log")
            value(opts.error_log);
        else if (a == "--keep-listen")
            opts.keep_listen = true;
        else
            bad = true;
    }
    if (bad || opts.source.empty()) {
        fprintf(stderr, "Usage: lowphp-fpm --migrate /etc/php/8.2/fpm/php-fpm.conf [--write DIR] "
                        "[--keep-listen] [--run-dir DIR] [--error-log FILE] [-p PREFIX]\n");
        return 64;
    }
    if (!write_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(write_dir, ec);
        auto abs = std::filesystem::absolute(write_dir, ec);
        opts.target_dir = ec ? write_dir : abs.lexically_normal().string();
        while (opts.target_dir.size() > 1 && opts.target_dir.back() == '/')
            opts.target_dir.pop_back();
    }
    Plan p = plan(opts);
    for (const auto& m : p.messages)
        if (m.level >= config::LogLevel::Warning) fprintf(stderr, "%s\n", m.text.c_str());
    if (!p.ok) {
        fprintf(stderr, "lowphp-fpm --migrate: %s is not a valid php-fpm configuration\n",
                opts.source.c_str());
        return kExitConfig;
    }
    fputs(report(p, opts).c_str(), stdout);
    if (write_dir.empty()) {
        printf("\nNothing written: add --write /etc/lowphp to write this configuration.\n");
        return 0;
    }
    std::vector<std::string> moved;
    std::string error = write(p, opts.target_dir, moved);
    for (const auto& m : moved)
        printf("moved aside: %s\n", m.c_str());
    if (!error.empty()) {
        fprintf(stderr, "lowphp-fpm --migrate: %s\n", error.c_str());
        return 1;
    }
    std::string main_file = opts.target_dir + "/lowphp-fpm.conf";
    config::ParseOptions po;
    po.prefix = opts.prefix;
    po.default_prefix = opts.prefix;
    config::ParseResult check = config::load(main_file, po);
    for (const auto& m : check.messages)
        fprintf(stderr, "%s\n", m.text.c_str());
    if (!check.config) {
        fprintf(stderr, "lowphp-fpm --migrate: the written %s does not pass -t\n",
                main_file.c_str());
        return kExitConfig;
    }
    printf("\nWritten: %s and %s/pool.d/ (%zu pools); lowphp-fpm -t -y %s passes.\n",
           main_file.c_str(), opts.target_dir.c_str(), p.pools.size(), main_file.c_str());
    return 0;
}

} // namespace lowphp::migrate
