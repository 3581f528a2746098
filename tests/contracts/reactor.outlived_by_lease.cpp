// SPDX-License-Identifier: MIT
// Violates reactor.outlived_by_lease: a buffer_lease from receive() still held when its reactor
// is destroyed (the lease would later return its buffer to a freed pool).
// expect: evio contract violation \[reactor\.outlived_by_lease\]
#include "common.hpp"

#include <array>
#include <memory>

int main() {
    auto r = std::make_unique<evio::reactor>();
    auto p = contract_program::connected(*r);
    auto lease = evio::sync_wait(*r, [](evio::reactor& re, contract_program::pair& pr)
                                         -> evio::task<evio::buffer_lease> {
        const std::array<std::byte, 1> one{std::byte{1}};
        (void)co_await pr.client.write_all(one);
        auto l = co_await pr.server.receive();
        (void)re;
        co_return std::move(l.value());
    }(*r, p));
    p.server.close();
    p.client.close();
    r.reset(); // the lease still holds one of its buffers
    lease = {};
    return contract_program::not_caught("reactor.outlived_by_lease");
}
