// SPDX-License-Identifier: MIT
// The request parsing both HTTP responders share (evio_http.cpp, asio_http.cpp), so the
// comparison measures the I/O layers, not two parsers.
//
// HTTP/1.1 keep-alive, pipelining-safe: every complete request head in the input gets one
// response, in order; a head split across reads waits for the rest; a request body announced
// by Content-Length is skipped (it must fit in the input buffer); "Connection: close" closes
// after its response.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace http_bench {

inline constexpr std::string_view response = "HTTP/1.1 200 OK\r\n"
                                             "Server: bench\r\n"
                                             "Content-Type: text/plain\r\n"
                                             "Content-Length: 13\r\n"
                                             "\r\n"
                                             "Hello, World!";

inline constexpr std::string_view bad_request = "HTTP/1.1 400 Bad Request\r\n"
                                                "Content-Length: 0\r\n"
                                                "Connection: close\r\n"
                                                "\r\n";

/// What parse() found in the input.
struct parsed {
    std::size_t consumed = 0; ///< bytes of complete requests (heads and bodies)
    bool close = false;       ///< answer, then close (Connection: close or a malformed head)
};

inline bool iequals_prefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = line[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != name[i]) return false;
    }
    return true;
}

inline std::string_view trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}

/// Appends one response per complete request in `in` to `out`. `scan_from` is where the
/// search for the end of the first head resumes (bytes before it were searched already);
/// parse() updates it for the next call.
inline parsed parse(std::string_view in, std::string& out, std::size_t& scan_from) {
    parsed p;
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::size_t from = pos + (scan_from > 3 ? scan_from - 3 : 0);
        const std::size_t end = in.find("\r\n\r\n", from);
        if (end == std::string_view::npos) {
            scan_from = in.size() - pos; // resume here once more bytes arrived
            break;
        }
        scan_from = 0;
        const std::string_view head = in.substr(pos, end - pos);
        std::size_t body = 0;
        bool ok = head.find(' ') != std::string_view::npos, close = false;
        // Header lines after the request line.
        for (std::size_t l = head.find("\r\n"); ok && l != std::string_view::npos;) {
            const std::size_t next = head.find("\r\n", l + 2);
            const std::string_view line =
                head.substr(l + 2, next == std::string_view::npos ? std::string_view::npos : next - l - 2);
            if (iequals_prefix(line, "content-length:")) {
                body = 0;
                const std::string_view v = trim(line.substr(15));
                if (v.empty() || v.size() > 9) ok = false;
                for (const char c : v) {
                    if (c < '0' || c > '9') ok = false;
                    body = body * 10 + static_cast<std::size_t>(c - '0');
                }
            } else if (iequals_prefix(line, "connection:")) {
                close = iequals_prefix(trim(line.substr(11)), "close");
            } else if (iequals_prefix(line, "transfer-encoding:")) {
                ok = false; // chunked request bodies are out of scope
            }
            l = next;
        }
        if (!ok) {
            out.append(bad_request);
            p.close = true;
            return p;
        }
        const std::size_t total = end + 4 - pos + body;
        if (in.size() - pos < total) break; // the body is still arriving
        out.append(response);
        pos += total;
        p.consumed = pos;
        if (close) {
            p.close = true;
            return p;
        }
    }
    return p;
}

} // namespace http_bench
