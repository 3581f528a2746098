// SPDX-License-Identifier: MIT
// evio::endpoint: parsing good and bad input, formatting, round trips.
#include "support/catch.hpp"

#include <evio/endpoint.hpp>

#include <string>

using evio::endpoint;

TEST_CASE("parse IPv4 endpoints") {
    auto e = endpoint::parse("127.0.0.1:80");
    REQUIRE(e);
    CHECK(e->is_v4());
    CHECK(e->port() == 80);
    CHECK(*e == endpoint::loopback_v4(80));
    CHECK(endpoint::parse("0.0.0.0:0").value() == endpoint::any_v4(0));
    CHECK(endpoint::parse("255.255.255.255:65535").value().port() == 65535);
    CHECK(endpoint::parse("10.1.2.3:8080").value().to_string() == "10.1.2.3:8080");
}

TEST_CASE("parse IPv6 endpoints") {
    CHECK(endpoint::parse("[::1]:80").value() == endpoint::loopback_v6(80));
    CHECK(endpoint::parse("[::]:443").value() == endpoint::any_v6(443));
    auto e = endpoint::parse("[2001:db8::8:800:200c:417a]:1");
    REQUIRE(e);
    CHECK(e->to_string() == "[2001:db8::8:800:200c:417a]:1");
    CHECK(endpoint::parse("[2001:DB8:0:0:8:800:200C:417A]:1").value() == *e);
    CHECK(endpoint::parse("[::ffff:192.0.2.1]:5").value().to_string() == "[::ffff:c000:201]:5");
    CHECK(endpoint::parse("[1:2:3:4:5:6:7:8]:9").value().to_string() == "[1:2:3:4:5:6:7:8]:9");
    CHECK(endpoint::parse("[1::]:9").value().to_string() == "[1::]:9");
    CHECK(endpoint::parse("[1:0:0:2::3]:9").value().to_string() == "[1:0:0:2::3]:9");
    CHECK(endpoint::parse("[1:0:0:2:0:0:0:3]:9").value().to_string() == "[1:0:0:2::3]:9");
}

TEST_CASE("bad endpoint strings are invalid_argument") {
    const char* bad[] = {"",
                         "127.0.0.1",
                         "127.0.0.1:",
                         "127.0.0.1:65536",
                         "127.0.0.1:123456",
                         "127.0.0.1:-1",
                         "127.0.0.1:8x",
                         "256.0.0.1:80",
                         "1.2.3:80",
                         "1.2.3.4.5:80",
                         "01.2.3.4:80",
                         "1..3.4:80",
                         "a.b.c.d:80",
                         " 1.2.3.4:80",
                         "1.2.3.4 :80",
                         "[::1]",
                         "[::1]80",
                         "::1:80",
                         "[:::1]:80",
                         "[1::2::3]:80",
                         "[12345::]:80",
                         "[1:2:3:4:5:6:7:8:9]:80",
                         "[1:2:3:4:5:6:7]:80",
                         "[fe80::1%eth0]:80",
                         "[g::1]:80",
                         "[1:]:80",
                         "localhost:80"};
    for (const char* s : bad) {
        INFO(s);
        auto e = endpoint::parse(s);
        REQUIRE_FALSE(e);
        CHECK(e.error() == evio::errc::invalid_argument);
    }
}

TEST_CASE("to_string round trips") {
    for (const char* s : {"1.2.3.4:5", "[::1]:80", "[fe80::1]:22", "[2001:db8::1]:65535",
                          "0.0.0.0:0"}) {
        INFO(s);
        CHECK(endpoint::parse(s).value().to_string() == s);
        CHECK(endpoint::parse(endpoint::parse(s).value().to_string()).value() ==
              endpoint::parse(s).value());
    }
}
