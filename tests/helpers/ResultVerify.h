#pragma once

// QVERIFY for corral::Result: fails the test with the Result's error message.

#include <QTest>

#define QVERIFY_RESULT(expr)                                                                       \
    do {                                                                                           \
        const auto &result_ = (expr);                                                              \
        QVERIFY2(result_.ok(), qPrintable(result_.error()));                                       \
    } while (false)
