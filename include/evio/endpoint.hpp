// SPDX-License-Identifier: MIT
// evio::endpoint: an IPv4 or IPv6 address and port, with parsing and formatting.
#pragma once

#include <evio/result.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace evio {

/// An IPv4 or IPv6 address plus a port. A plain value type; no system headers needed.
class endpoint {
public:
    enum class family : std::uint8_t { v4 = 4, v6 = 6 };

    /// 0.0.0.0:0
    constexpr endpoint() noexcept = default;

    /// An IPv4 endpoint from four address bytes in network order.
    static constexpr endpoint v4(std::array<std::uint8_t, 4> a, std::uint16_t port) noexcept {
        endpoint e;
        e.family_ = family::v4;
        for (int i = 0; i < 4; ++i) e.addr_[i] = a[i];
        e.port_ = port;
        return e;
    }
    /// An IPv6 endpoint from sixteen address bytes in network order.
    static constexpr endpoint v6(std::array<std::uint8_t, 16> a, std::uint16_t port,
                                 std::uint32_t scope_id = 0) noexcept {
        endpoint e;
        e.family_ = family::v6;
        e.addr_ = a;
        e.port_ = port;
        e.scope_id_ = scope_id;
        return e;
    }
    /// 127.0.0.1:port
    static constexpr endpoint loopback_v4(std::uint16_t port) noexcept {
        return v4({127, 0, 0, 1}, port);
    }
    /// [::1]:port
    static constexpr endpoint loopback_v6(std::uint16_t port) noexcept {
        std::array<std::uint8_t, 16> a{};
        a[15] = 1;
        return v6(a, port);
    }
    /// 0.0.0.0:port (all IPv4 interfaces).
    static constexpr endpoint any_v4(std::uint16_t port) noexcept { return v4({0, 0, 0, 0}, port); }
    /// [::]:port (all IPv6 interfaces).
    static constexpr endpoint any_v6(std::uint16_t port) noexcept { return v6({}, port); }

    /// Parses "a.b.c.d:port" or "[v6]:port" (v6 with "::" compression and an optional embedded
    /// dotted quad). Errors: errc::invalid_argument for anything else (missing or out-of-range
    /// port, bad digits, trailing characters, zone ids).
    static result<endpoint> parse(std::string_view text) noexcept {
        if (text.empty()) return errc::invalid_argument;
        endpoint e;
        std::string_view port_text;
        if (text.front() == '[') {
            const auto close = text.find(']');
            if (close == std::string_view::npos || close + 1 >= text.size() ||
                text[close + 1] != ':')
                return errc::invalid_argument;
            if (!parse_v6(text.substr(1, close - 1), e.addr_)) return errc::invalid_argument;
            e.family_ = family::v6;
            port_text = text.substr(close + 2);
        } else {
            const auto colon = text.rfind(':');
            if (colon == std::string_view::npos) return errc::invalid_argument;
            std::array<std::uint8_t, 4> a{};
            if (!parse_v4(text.substr(0, colon), a)) return errc::invalid_argument;
            e = v4(a, 0);
            port_text = text.substr(colon + 1);
        }
        std::uint32_t port = 0;
        if (port_text.empty() || port_text.size() > 5) return errc::invalid_argument;
        for (char c : port_text) {
            if (c < '0' || c > '9') return errc::invalid_argument;
            port = port * 10 + static_cast<std::uint32_t>(c - '0');
        }
        if (port > 65535) return errc::invalid_argument;
        e.port_ = static_cast<std::uint16_t>(port);
        return e;
    }

    constexpr family address_family() const noexcept { return family_; }
    constexpr bool is_v4() const noexcept { return family_ == family::v4; }
    constexpr bool is_v6() const noexcept { return family_ == family::v6; }
    constexpr std::uint16_t port() const noexcept { return port_; }
    constexpr void set_port(std::uint16_t p) noexcept { port_ = p; }
    constexpr std::uint32_t scope_id() const noexcept { return scope_id_; }
    /// Address bytes in network order (first 4 used for IPv4).
    constexpr const std::array<std::uint8_t, 16>& address_bytes() const noexcept { return addr_; }

    /// "a.b.c.d:port" or "[v6]:port" (RFC 5952 form: lowercase, longest zero run as "::").
    std::string to_string() const {
        std::string out;
        if (is_v4()) {
            for (int i = 0; i < 4; ++i) {
                if (i) out += '.';
                out += std::to_string(addr_[i]);
            }
        } else {
            out += '[';
            std::uint16_t g[8];
            for (int i = 0; i < 8; ++i)
                g[i] = static_cast<std::uint16_t>(addr_[2 * i] << 8 | addr_[2 * i + 1]);
            int best = -1, best_len = 0;
            for (int i = 0; i < 8;) {
                if (g[i] != 0) {
                    ++i;
                    continue;
                }
                int j = i;
                while (j < 8 && g[j] == 0) ++j;
                if (j - i > best_len && j - i >= 2) best = i, best_len = j - i;
                i = j;
            }
            static constexpr char hex[] = "0123456789abcdef";
            for (int i = 0; i < 8; ++i) {
                if (i == best) {
                    out += "::";
                    i += best_len - 1;
                    continue;
                }
                if (i && !(best >= 0 && i == best + best_len)) out += ':';
                bool lead = true;
                for (int s = 12; s >= 0; s -= 4) {
                    const int d = (g[i] >> s) & 0xf;
                    if (d == 0 && lead && s != 0) continue;
                    lead = false;
                    out += hex[d];
                }
            }
            out += ']';
        }
        out += ':';
        out += std::to_string(port_);
        return out;
    }

    friend constexpr bool operator==(const endpoint&, const endpoint&) = default;

private:
    static constexpr bool parse_v4(std::string_view s, std::array<std::uint8_t, 4>& out) noexcept {
        int part = 0;
        std::size_t i = 0;
        while (part < 4) {
            if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
            unsigned v = 0;
            std::size_t digits = 0;
            const std::size_t first = i;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
                v = v * 10 + static_cast<unsigned>(s[i] - '0');
                if (++digits > 3) return false;
                ++i;
            }
            if (v > 255 || (digits > 1 && s[first] == '0')) return false; // no octal-looking parts
            out[static_cast<std::size_t>(part++)] = static_cast<std::uint8_t>(v);
            if (part < 4) {
                if (i >= s.size() || s[i] != '.') return false;
                ++i;
            }
        }
        return i == s.size();
    }

    static constexpr int hex_value(char c) noexcept {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    static constexpr bool parse_v6(std::string_view s, std::array<std::uint8_t, 16>& out) noexcept {
        std::uint16_t groups[8]{};
        int count = 0, gap = -1;
        std::size_t i = 0;
        if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
            gap = 0;
            i = 2;
            if (i == s.size()) {
                out = {};
                return true;
            }
        } else if (!s.empty() && s[0] == ':') {
            return false;
        }
        while (i < s.size()) {
            if (count >= 8) return false;
            // An embedded dotted quad may end the address.
            const auto rest = s.substr(i);
            if (rest.find('.') != std::string_view::npos && rest.find(':') == std::string_view::npos) {
                std::array<std::uint8_t, 4> q{};
                if (count > 6 || !parse_v4(rest, q)) return false;
                groups[count++] = static_cast<std::uint16_t>(q[0] << 8 | q[1]);
                groups[count++] = static_cast<std::uint16_t>(q[2] << 8 | q[3]);
                i = s.size();
                break;
            }
            unsigned v = 0;
            int digits = 0;
            while (i < s.size() && hex_value(s[i]) >= 0) {
                v = v * 16 + static_cast<unsigned>(hex_value(s[i]));
                if (++digits > 4) return false;
                ++i;
            }
            if (digits == 0) return false;
            groups[count++] = static_cast<std::uint16_t>(v);
            if (i == s.size()) break;
            if (s[i] != ':') return false;
            ++i;
            if (i < s.size() && s[i] == ':') {
                if (gap >= 0) return false;
                gap = count;
                ++i;
                if (i == s.size()) break;
            } else if (i == s.size()) {
                return false; // trailing single ':'
            }
        }
        if (gap < 0 && count != 8) return false;
        if (gap >= 0 && count > 7) return false;
        std::uint16_t full[8]{};
        if (gap < 0) {
            for (int k = 0; k < 8; ++k) full[k] = groups[k];
        } else {
            const int tail = count - gap;
            for (int k = 0; k < gap; ++k) full[k] = groups[k];
            for (int k = 0; k < tail; ++k) full[8 - tail + k] = groups[gap + k];
        }
        for (std::size_t k = 0; k < 8; ++k) {
            out[2 * k] = static_cast<std::uint8_t>(full[k] >> 8);
            out[2 * k + 1] = static_cast<std::uint8_t>(full[k] & 0xff);
        }
        return true;
    }

    std::array<std::uint8_t, 16> addr_{};
    std::uint32_t scope_id_ = 0;
    std::uint16_t port_ = 0;
    family family_ = family::v4;
};

} // namespace evio
