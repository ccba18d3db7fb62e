// Must NOT build: corral_core does not provide QtWidgets. See tests/CMakeLists.txt.
#include <QWidget>

int main() {
    QWidget widget;
    return widget.isVisible() ? 1 : 0;
}
