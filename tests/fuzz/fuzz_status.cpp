// The status page (status::render in its five formats, escape_html/json) and
// access.log lines (check_access_format, format_access_line) over fuzzed
// snapshots, records and formats. Times stay in the range a clock gives
// (localtime of any time_t is not the formatters' business).
#include <cstdint>
#include <cstdlib>
#include <fuzzer/FuzzedDataProvider.h>
#include <optional>
#include <string>

#include "lowphp/access_format.h"
#include "lowphp/access_log.h"
#include "lowphp/status.h"

using namespace lowphp::status;

namespace {

constexpr uint64_t kMaxTime = uint64_t{1} << 33; // year 2242

std::string text(FuzzedDataProvider& in, size_t max = 64) {
    return in.ConsumeRandomLengthString(max);
}

void status_page(FuzzedDataProvider& in) {
    static const char* const kPm[] = {"static", "dynamic", "ondemand"};
    static const char* const kStates[] = {"Idle", "Running", "Reading headers", "Finishing",
                                          "Ending"};
    Snapshot s;
    PoolStatus& p = s.pool;
    p.pool = text(in);
    p.process_manager = in.ConsumeBool() ? in.PickValueInArray(kPm) : text(in, 16);
    p.start_time = in.ConsumeIntegralInRange<uint64_t>(0, kMaxTime);
    p.start_since = in.ConsumeIntegral<uint64_t>();
    p.accepted_conn = in.ConsumeIntegral<uint64_t>();
    p.listen_queue = in.ConsumeIntegral<uint32_t>();
    p.max_listen_queue = in.ConsumeIntegral<uint32_t>();
    p.listen_queue_len = in.ConsumeIntegral<int>();
    p.idle = in.ConsumeIntegral<int>();
    p.active = in.ConsumeIntegral<int>();
    p.total = in.ConsumeIntegral<int>();
    p.max_active = in.ConsumeIntegral<int>();
    p.max_children_reached = in.ConsumeIntegral<uint32_t>();
    p.slow_requests = in.ConsumeIntegral<uint64_t>();
    if (in.ConsumeBool()) {
        p.max_memory = in.ConsumeIntegral<uint64_t>();
        p.memory_recycles = in.ConsumeIntegral<uint64_t>();
    }
    for (int n = in.ConsumeIntegralInRange(0, 4); n > 0; --n) {
        ProcStatus q;
        q.pid = in.ConsumeIntegral<int>();
        q.state = in.ConsumeBool() ? in.PickValueInArray(kStates) : text(in, 16);
        q.start_time = in.ConsumeIntegralInRange<uint64_t>(0, kMaxTime);
        q.start_since = in.ConsumeIntegral<uint64_t>();
        q.requests = in.ConsumeIntegral<uint64_t>();
        q.request_duration_us = in.ConsumeIntegral<uint64_t>();
        q.method = text(in, 16);
        q.uri = text(in);
        q.query = text(in);
        q.user = text(in, 16);
        q.script = text(in);
        q.content_length = in.ConsumeIntegral<uint64_t>();
        q.last_cpu = in.ConsumeFloatingPointInRange<double>(0, 1e6);
        q.last_memory = in.ConsumeIntegral<uint64_t>();
        s.procs.push_back(q);
    }
    for (Format f : {Format::Text, Format::Html, Format::Xml, Format::Json, Format::OpenMetrics})
        for (bool full : {false, true}) {
            Page page = render(s, f, full);
            if (page.content_type.empty()) abort();
        }
    (void)escape_html(p.pool);
    (void)escape_json(p.pool);
}

void access_line(FuzzedDataProvider& in) {
    std::string format = text(in, 256);
    AccessRecord r;
    r.duration_us = in.ConsumeIntegral<uint64_t>();
    r.cpu_user = in.ConsumeFloatingPointInRange<double>(0, 1e4);
    r.cpu_system = in.ConsumeFloatingPointInRange<double>(0, 1e4);
    r.script = text(in);
    r.method = text(in, 16);
    r.query = text(in);
    r.uri = text(in);
    r.remote_ip = text(in, 40);
    r.user = text(in, 16);
    r.pool = text(in, 16);
    r.content_length = in.ConsumeIntegral<uint64_t>();
    r.memory = in.ConsumeIntegral<uint64_t>();
    r.status = in.ConsumeIntegral<int>();
    r.pid = in.ConsumeIntegral<long>();
    r.ppid = in.ConsumeIntegral<long>();
    r.accepted = static_cast<time_t>(in.ConsumeIntegralInRange<uint64_t>(0, kMaxTime));
    r.now = static_cast<time_t>(in.ConsumeIntegralInRange<uint64_t>(0, kMaxTime));
    std::string param_value = text(in), header_value = text(in);
    bool has_param = in.ConsumeBool(), has_header = in.ConsumeBool();
    r.param = [&](const std::string&) -> std::optional<std::string> {
        return has_param ? std::optional<std::string>(param_value) : std::nullopt;
    };
    r.header = [&](const std::string&) -> std::optional<std::string> {
        return has_header ? std::optional<std::string>(header_value) : std::nullopt;
    };
    // The worker formats only what passed the start-up check.
    if (!lowphp::config::check_access_format(format).empty()) return;
    bool truncated = false;
    std::string line = format_access_line(format, r, truncated);
    if (line.size() > kAccessLineMax) abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    if (in.ConsumeBool()) {
        access_line(in);
    } else {
        status_page(in);
    }
    return 0;
}
