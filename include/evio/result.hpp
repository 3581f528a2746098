// SPDX-License-Identifier: MIT
// evio::result<T>: a value or a std::error_code, the return type of every I/O operation.
#pragma once

#include <evio/detail/contract.hpp>
#include <evio/error.hpp>

#include <cstddef>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

namespace evio {

/// A value of type T or a std::error_code (std::expected-like). I/O failures are reported
/// through it; evio never throws for them.
template <class T>
class result {
    static_assert(!std::is_reference_v<T>, "result<T&> is not supported");
    static_assert(!std::is_same_v<std::remove_cv_t<T>, std::error_code>);

public:
    using value_type = T;

    /// A result holding a value-initialized T.
    result()
        requires std::is_default_constructible_v<T>
        : has_(true) {
        ::new (static_cast<void*>(&value_)) T();
    }
    /// A result holding `v`.
    result(const T& v) : has_(true) { ::new (static_cast<void*>(&value_)) T(v); }
    /// A result holding `v`.
    result(T&& v) : has_(true) { ::new (static_cast<void*>(&value_)) T(std::move(v)); }
    /// A result holding the error `ec`. Preconditions: `ec` is an error (non-zero).
    result(std::error_code ec) : has_(false) {
        EVIO_CONTRACT(1, "result.empty_error", static_cast<bool>(ec));
        ::new (static_cast<void*>(&error_)) std::error_code(ec);
    }
    /// A result holding the error `e`.
    result(errc e) : result(make_error_code(e)) {}

    result(const result& o) : has_(o.has_) {
        if (has_)
            ::new (static_cast<void*>(&value_)) T(o.value_);
        else
            ::new (static_cast<void*>(&error_)) std::error_code(o.error_);
    }
    result(result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : has_(o.has_) {
        if (has_)
            ::new (static_cast<void*>(&value_)) T(std::move(o.value_));
        else
            ::new (static_cast<void*>(&error_)) std::error_code(o.error_);
    }
    result& operator=(const result& o) {
        if (this != &o) {
            result tmp(o);
            destroy();
            ::new (static_cast<void*>(this)) result(std::move(tmp));
        }
        return *this;
    }
    result& operator=(result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) {
        if (this != &o) {
            destroy();
            ::new (static_cast<void*>(this)) result(std::move(o));
        }
        return *this;
    }
    ~result() { destroy(); }

    /// True when a value is held.
    bool has_value() const noexcept { return has_; }
    /// True when a value is held.
    explicit operator bool() const noexcept { return has_; }

    /// The value. Errors: throws std::system_error(error()) when an error is held.
    T& value() & {
        check();
        return value_;
    }
    const T& value() const& {
        check();
        return value_;
    }
    T&& value() && {
        check();
        return std::move(value_);
    }

    /// The value, or `fallback` when an error is held.
    template <class U>
    T value_or(U&& fallback) const& {
        return has_ ? value_ : static_cast<T>(std::forward<U>(fallback));
    }

    /// The error; a default (success) error_code when a value is held.
    std::error_code error() const noexcept { return has_ ? std::error_code{} : error_; }

    /// The value. Preconditions: has_value() (contract `result.no_value`).
    T& operator*() & {
        EVIO_CONTRACT(1, "result.no_value", has_);
        return value_;
    }
    const T& operator*() const& {
        EVIO_CONTRACT(1, "result.no_value", has_);
        return value_;
    }
    T&& operator*() && {
        EVIO_CONTRACT(1, "result.no_value", has_);
        return std::move(value_);
    }
    T* operator->() {
        EVIO_CONTRACT(1, "result.no_value", has_);
        return &value_;
    }
    const T* operator->() const {
        EVIO_CONTRACT(1, "result.no_value", has_);
        return &value_;
    }

private:
    void check() const {
        if (!has_) throw std::system_error(error_);
    }
    void destroy() noexcept {
        if (has_)
            value_.~T();
        else
            error_.~error_code();
    }

    union {
        T value_;
        std::error_code error_;
    };
    bool has_;
};

/// Success or a std::error_code.
template <>
class result<void> {
public:
    using value_type = void;

    /// Success.
    result() noexcept = default;
    /// The error `ec`; a default error_code means success.
    result(std::error_code ec) noexcept { set(ec); }
    /// The error `e`.
    result(errc e) noexcept { set(make_error_code(e)); }
    /// The error `ec` of a composed I/O operation that moved `transferred` bytes before it
    /// stopped (read_exact, write_all: timeouts, cancellation and failures lose no count).
    result(std::error_code ec, std::size_t transferred) noexcept : transferred_(transferred) {
        set(ec);
    }

    /// True on success.
    bool has_value() const noexcept { return code_ == 0; }
    /// True on success.
    explicit operator bool() const noexcept { return code_ == 0; }
    /// Errors: throws std::system_error(error()) when an error is held.
    void value() const {
        if (code_ != 0) throw std::system_error(error());
    }
    /// Preconditions: has_value() (contract `result.no_value`).
    void operator*() const { EVIO_CONTRACT(1, "result.no_value", code_ == 0); }
    /// The error; a default (success) error_code on success.
    std::error_code error() const noexcept {
        return code_ != 0 ? std::error_code(code_, *category_) : std::error_code{};
    }
    /// Bytes a composed I/O operation moved before it stopped (0 when not applicable).
    std::size_t transferred() const noexcept { return transferred_; }

private:
    void set(std::error_code ec) noexcept {
        code_ = ec.value();
        category_ = &ec.category();
    }
    // Not a std::error_code member: its default constructor calls std::system_category(), an
    // out-of-line call on every successful write_all/read_exact (callgrind: 7 instructions).
    int code_ = 0;
    const std::error_category* category_ = nullptr;
    std::size_t transferred_ = 0;
};

} // namespace evio
