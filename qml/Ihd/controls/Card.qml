import QtQuick
import Ihd

Rectangle {
    default property alias content: inner.data
    property string heading: ""
    radius: Theme.radius
    color: Theme.card
    border.color: Theme.cardBorder
    border.width: 1

    Text {
        id: headingText
        visible: text !== ""
        text: parent.heading
        color: Theme.textDim
        font.pixelSize: Theme.small
        font.letterSpacing: 1.5
        font.capitalization: Font.AllUppercase
        anchors { left: parent.left; top: parent.top; leftMargin: 20; topMargin: 14 }
    }
    Item {
        id: inner
        anchors {
            fill: parent
            margins: 16
            topMargin: headingText.visible ? headingText.height + 22 : 16
        }
    }
}
