// Every error halibit reports to a user is a halibit::Error with a message that names what is wrong.
#pragma once
#include <stdexcept>
#include <string>

namespace halibit {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace halibit
