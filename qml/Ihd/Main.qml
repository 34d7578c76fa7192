import QtQuick
import QtQuick.Controls
import Ihd

ApplicationWindow {
    id: window
    width: 800
    height: 480
    minimumWidth: 640
    minimumHeight: 400
    visible: true
    title: qsTr("Home energy")
    color: Theme.background

    StackView {
        id: stack
        anchors.fill: parent
        initialItem: HomeScreen {}
    }
}
