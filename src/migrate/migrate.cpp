// lowphp-fpm --migrate: php-fpm.conf + pool files -> lowphp configuration.
// The source is first loaded with config::load (php-fpm's own checks and
// values); a second, line-level pass copies every line into the section it
// belongs to, so comments, order and spelling survive, and rewrites only the
// directives that must differ for both servers to run side by side.
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
#include <glob.h>
#include <memory>
#include <set>
#include <sstream>
#include <unistd.h>

namespace lowphp::migrate {
namespace {

constexpr int kMaxIncludeDepth = 5;

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

std::string unquote(std::string v) {
    if (v.size() >= 2 && (v[0] == '"' || v[0] == '\'') && v.back() == v[0])
        v = v.substr(1, v.size() - 2);
    return v;
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

// Line-level pass: every line lands in the section it belongs to, include=
// files inline (as php-fpm reads them: an included file continues the
// current section until it opens its own).
struct Reader {
    const Options& opts;
    const config::Config& cfg;
    Plan& plan;
    ListenMap listens;
    std::map<std::string, std::string> new_listen, new_status_listen; // pool -> address
    Section* current = nullptr;
    std::string pending;      // comments and blank lines, given to the next section or entry
    std::string written_name; // the directive name as the file spells it
    std::string error;

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

    void global_entry(const std::string& name, const std::string& raw, const std::string& line) {
        Section& g = plan.global;
        std::string value = unquote(raw);
        if (name == "pid") {
            changed(g, "pid", value, opts.run_dir + "/lowphp-fpm.pid",
                    "php-fpm writes its pid there; both servers run side by side");
        } else if (name == "error_log" && value != "syslog") {
            changed(g, "error_log", value, opts.error_log,
                    "a log of its own, rotated by /etc/logrotate.d/lowphp-fpm");
        } else if (name == "syslog.ident" && cfg.global.error_log == "syslog") {
            changed(g, "syslog.ident", value, "lowphp-fpm",
                    "tells lowphp-fpm's lines from php-fpm's");
        } else {
            g.text += line + "\n";
            g.unchanged.emplace_back(written_name, raw);
        }
    }

    void pool_entry(Section& s, const std::string& name, const std::string& raw,
                    const std::string& line) {
        const config::PoolConfig* p = pool_config(s.name);
        if (!opts.keep_listen && p && (name == "listen" || name == "pm.status_listen")) {
            bool status = name == "pm.status_listen";
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
        s.text += line + "\n";
        s.unchanged.emplace_back(written_name, raw);
    }

    bool include(const std::string& file, int lineno, const std::string& pattern, int depth) {
        std::string full = pattern[0] == '/' ? pattern : opts.prefix + "/" + pattern;
        glob_t g{};
        int rc = glob(full.c_str(), GLOB_ERR | GLOB_MARK, nullptr, &g);
        std::unique_ptr<glob_t, void (*)(glob_t*)> guard(&g, globfree);
        if (rc == GLOB_NOMATCH) return true;
        if (rc != 0) {
            error = "unable to expand include '" + full + "' from " + file + ":" +
                    std::to_string(lineno);
            return false;
        }
        for (size_t i = 0; i < g.gl_pathc; ++i) {
            std::string p = g.gl_pathv[i];
            if (p.empty() || p.back() == '/') continue;
            flush_pending();
            if (current) current->text += "; lowphp-fpm --migrate: from " + p + "\n";
            if (!read(p, depth + 1)) return false;
        }
        return true;
    }

    bool read(const std::string& file, int depth) {
        if (depth > kMaxIncludeDepth) {
            error = "includes nested deeper than " + std::to_string(kMaxIncludeDepth) +
                    " levels at " + file;
            return false;
        }
        std::ifstream in(file);
        if (!in) {
            error = "unable to read " + file + log::errno_suffix(errno);
            return false;
        }
        std::string line;
        int lineno = 0;
        while (std::getline(in, line)) {
            ++lineno;
            std::string t = trim(line);
            if (t.size() > 1 && t[0] == '[' && t.back() == ']') {
                std::string name = trim(t.substr(1, t.size() - 2));
                current = name == "global" ? &plan.global : &pool_section(name);
                note_file(*current, file);
                flush_pending();
                if (current != &plan.global) current->text += line + "\n";
                continue;
            }
            if (!current) current = &plan.global;
            size_t eq = t.find('=');
            if (t.empty() || t[0] == ';' || t[0] == '#' || eq == std::string::npos) {
                pending += line + "\n";
                continue;
            }
            written_name = trim(t.substr(0, eq));
            std::string name = lower(written_name);
            std::string raw = trim(t.substr(eq + 1));
            if (name == "include") {
                if (!include(file, lineno, unquote(raw), depth)) return false;
                continue;
            }
            note_file(*current, file);
            flush_pending();
            if (current == &plan.global)
                global_entry(name, raw, line);
            else
                pool_entry(*current, name, raw, line);
        }
        if (depth == 0) flush_pending();
        return true;
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
    config::ParseResult parsed = config::load(opts.source, po);
    result.messages = parsed.messages;
    if (!parsed.config) return result;
    result.global.name = "global";
    Reader r(opts, *parsed.config, result);
    if (!r.read(opts.source, 0)) {
        result.messages.push_back({config::LogLevel::Error, r.error, false});
        return result;
    }
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
