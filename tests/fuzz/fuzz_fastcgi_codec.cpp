// The FastCGI codec (records.cpp): parse_header/put_header, decode_params and
// encode_param, and OutputBuffer. Besides ASan/UBSan, three properties abort:
// - a header parsed, put back and parsed again is the same header;
// - decoded pairs are NUL-terminated, and re-encoded they decode the same;
// - the records OutputBuffer produces are well formed (version 1, padded to 8,
//   content within 0xfff8) and carry exactly the bytes appended, in order.
#include <cstdint>
#include <cstdlib>
#include <fuzzer/FuzzedDataProvider.h>
#include <string>
#include <utility>
#include <vector>

#include "lowphp/fastcgi.h"

namespace fcgi = lowphp::fastcgi;

namespace {

void check(bool ok) {
    if (!ok) abort();
}

void headers(const uint8_t* data, size_t size) {
    for (size_t i = 0; i + fcgi::kHeaderSize <= size && i < 64; i += fcgi::kHeaderSize) {
        fcgi::Header h = fcgi::parse_header(data + i);
        unsigned char back[fcgi::kHeaderSize];
        fcgi::put_header(back, h.type, h.request_id, h.content_length, h.padding);
        fcgi::Header again = fcgi::parse_header(back);
        check(again.version == 1 && again.type == h.type && again.request_id == h.request_id &&
              again.content_length == h.content_length && again.padding == h.padding);
    }
}

void params(std::string_view stream) {
    std::string arena;
    std::vector<fcgi::Param> out;
    if (!fcgi::decode_params(stream, arena, out)) return;
    std::string encoded;
    for (const auto& [name, value] : out) {
        check(name.data()[name.size()] == '\0' && value.data()[value.size()] == '\0');
        fcgi::encode_param(encoded, name, value);
    }
    std::string arena2;
    std::vector<fcgi::Param> out2;
    check(fcgi::decode_params(encoded, arena2, out2));
    check(out2 == out);
}

// (type, requestId, content) runs, adjacent runs of the same stream merged.
using Runs = std::vector<std::pair<std::pair<uint8_t, uint16_t>, std::string>>;

void add_run(Runs& runs, uint8_t type, uint16_t id, std::string_view bytes) {
    if (bytes.empty()) return;
    if (!runs.empty() && runs.back().first == std::make_pair(type, id))
        runs.back().second.append(bytes);
    else
        runs.push_back({{type, id}, std::string(bytes)});
}

Runs records_of(std::string_view b) {
    Runs runs;
    size_t i = 0;
    while (i < b.size()) {
        check(b.size() - i >= fcgi::kHeaderSize);
        fcgi::Header h = fcgi::parse_header(reinterpret_cast<const unsigned char*>(b.data() + i));
        check(h.version == 1 && b[i + 7] == 0);
        check(h.content_length <= fcgi::kMaxOutputRecord);
        check((h.content_length + h.padding) % 8 == 0 && h.padding < 8);
        check(b.size() - i - fcgi::kHeaderSize >= size_t{h.content_length} + h.padding);
        if (h.type == fcgi::kEndRequest) check(h.content_length == 8);
        add_run(runs, h.type, h.request_id, b.substr(i + fcgi::kHeaderSize, h.content_length));
        i += fcgi::kHeaderSize + h.content_length + h.padding;
    }
    return runs;
}

// A sequence of OutputBuffer calls as a worker makes them, checked against a model.
void output_buffer(FuzzedDataProvider& in) {
    static const uint8_t kTypes[] = {fcgi::kStdout, fcgi::kStderr, fcgi::kGetValuesResult};
    fcgi::OutputBuffer out;
    Runs model;
    std::string sent; // what earlier bytes() calls returned, as a worker writes it
    Runs sent_model;
    bool headers_only = false; // append_header leaves its content out of the buffer
    int large_left = 2;        // large appends are slow to check: two an input
    static const std::string big = [] {
        std::string s(3 * fcgi::kMaxOutputRecord, '\0');
        for (size_t k = 0; k < s.size(); ++k)
            s[k] = static_cast<char>('a' + k % 26);
        return s;
    }();
    while (in.remaining_bytes() > 0) {
        uint16_t id = in.ConsumeBool() ? 1 : in.ConsumeIntegral<uint16_t>();
        switch (in.ConsumeIntegralInRange(0, 6)) {
        case 0:
        case 1: {
            uint8_t type = in.PickValueInArray(kTypes);
            std::string data = in.ConsumeRandomLengthString(512);
            out.append(type, id, data.data(), data.size());
            add_run(model, type, id, data);
            break;
        }
        case 2: { // large output: cut into 0xfff8-byte records
            if (large_left-- <= 0) break;
            uint8_t type = in.PickValueInArray(kTypes);
            size_t len = in.ConsumeIntegralInRange<size_t>(0, big.size());
            out.append(type, id, big.data(), len);
            add_run(model, type, id, std::string_view(big.data(), len));
            break;
        }
        case 3:
            out.append_header(in.PickValueInArray(kTypes), id, in.ConsumeIntegral<uint16_t>());
            headers_only = true;
            break;
        case 4:
            out.close_record();
            check(!out.record_open());
            break;
        case 5:
            out.end_request(id);
            add_run(model, fcgi::kEndRequest, id, std::string(8, '\0'));
            check(!out.record_open());
            break;
        case 6: { // written: the buffer empties, as Connection does after a send
            std::string_view b = out.bytes();
            check(!out.record_open() && b.size() == out.size());
            sent.append(b);
            for (auto& r : model)
                add_run(sent_model, r.first.first, r.first.second, r.second);
            model.clear();
            out.clear();
            check(out.size() == 0 && !out.record_open());
            break;
        }
        }
    }
    sent.append(out.bytes());
    for (auto& r : model)
        add_run(sent_model, r.first.first, r.first.second, r.second);
    if (!headers_only) check(records_of(sent) == sent_model);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    headers(data, size);
    params(std::string_view(reinterpret_cast<const char*>(data), size));
    // PARAMS streams are usually found after a header: try the input past one too.
    if (size > fcgi::kHeaderSize)
        params(std::string_view(reinterpret_cast<const char*>(data) + fcgi::kHeaderSize,
                                size - fcgi::kHeaderSize));
    FuzzedDataProvider in(data, size);
    output_buffer(in);
    return 0;
}
