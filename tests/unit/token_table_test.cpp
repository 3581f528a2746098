// SPDX-License-Identifier: MIT
// detail::token_table: allocation, generations, the deregistration protocol and its contracts.
#include "support/catch.hpp"
#include "support/fixture.hpp"

#include <evio/detail/token_table.hpp>

using evio::detail::slot_state;
using evio::detail::token_table;

TEST_CASE("tokens carry index, generation and owner; slots are reused LIFO") {
    token_table t{7};
    const auto a = t.allocate(10);
    const auto b = t.allocate(11);
    CHECK(a.owner == 7);
    CHECK(a.index != b.index);
    CHECK(t.live() == 2);
    CHECK(t.find(a) == &t.at(a.index));
    t.begin_deregister(a);
    CHECK(t.at(a.index).state == slot_state::deregistering);
    CHECK(t.find(a) == nullptr);
    t.finish_deregister(a.index);
    CHECK(t.at(a.index).state == slot_state::free);
    const auto c = t.allocate(12);
    CHECK(c.index == a.index);            // reused at once
    CHECK(c.generation == a.generation + 1); // but with a new generation
    CHECK(t.find(a) == nullptr);          // the old token is stale
    CHECK(t.find(c) != nullptr);
}

TEST_CASE("deregistration contracts") {
    evio::test::throwing_contracts guard;
    token_table t{1};
    const auto a = t.allocate(3);
    t.begin_deregister(a);
    t.finish_deregister(a.index);
    try {
        t.begin_deregister(a);
        FAIL("no contract");
    } catch (const evio::test::contract_error& e) {
        CHECK(e.id == "deregister.twice");
    }
    const auto b = t.allocate(4);
    (void)b;
    auto stale = a;
    stale.generation -= 1;
    try {
        t.begin_deregister(stale);
        FAIL("no contract");
    } catch (const evio::test::contract_error& e) {
        CHECK(e.id == "deregister.stale");
    }
    auto foreign = b;
    foreign.owner = 99;
    try {
        t.begin_deregister(foreign);
        FAIL("no contract");
    } catch (const evio::test::contract_error& e) {
        CHECK(e.id == "deregister.foreign");
    }
    try {
        (void)t.checked(a);
        FAIL("no contract");
    } catch (const evio::test::contract_error& e) {
        CHECK(e.id == "op.stale_token");
    }
}

TEST_CASE("a slot with work in flight is not freed") {
    evio::test::throwing_contracts guard;
    token_table t{1};
    const auto a = t.allocate(3);
    t.at(a.index).in_flight = 1;
    t.begin_deregister(a);
    CHECK_THROWS_AS(t.finish_deregister(a.index), evio::test::contract_error);
}

TEST_CASE("audit snapshots see a changed neighbour") {
    token_table t{1};
    const auto a = t.allocate(3);
    const auto b = t.allocate(4);
    std::vector<evio::detail::slot_snapshot> before;
    t.snapshot_all(before);
    CHECK(t.neighbours_unchanged(before, a.index));
    t.at(a.index).interest = 3; // changing the excluded slot is fine
    CHECK(t.neighbours_unchanged(before, a.index));
    t.at(b.index).interest = 1;
    CHECK_FALSE(t.neighbours_unchanged(before, a.index));
}
