// bitserial_conv schedules: see popcount_conv.h (shared with bconv).
#pragma once
#include "popcount_conv.h"
