import QtQuick
import Ihd
import Ihd.Backend

Row {
    spacing: 10
    Rectangle {
        width: 16; height: 16; radius: 8
        anchors.verticalCenter: parent.verticalCenter
        color: Link.state === "live" ? Theme.live
             : Link.state === "stale" ? Theme.stale
             : Link.state === "lost" || Link.state === "unpaired" ? Theme.lost
             : Theme.textDim
    }
    Text {
        objectName: "linkText"
        text: Link.text
        color: Theme.textDim
        font.pixelSize: Theme.small
        anchors.verticalCenter: parent.verticalCenter
    }
}
