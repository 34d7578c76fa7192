import QtQuick
import QtQuick.Layouts
import Ihd

// One utility's "today" line: colour tab; name over amount on the left; cost over the
// standing-charge note on the right.
Item {
    id: row
    property string utility
    property string title
    property string amountText
    property string unit
    property string costText
    property string detailText
    property string light           // green, amber, red or "": spending against budget/usual
    property string lightText
    implicitHeight: 84

    RowLayout {
        anchors { fill: parent; leftMargin: 8; rightMargin: 8 }
        spacing: 14

        Rectangle {
            Layout.preferredWidth: 8
            Layout.fillHeight: true
            Layout.topMargin: 8
            Layout.bottomMargin: 8
            radius: 4
            color: Theme.utilityColor(row.utility)
        }
        ColumnLayout {
            Layout.fillWidth: true
            Layout.alignment: Qt.AlignLeft | Qt.AlignVCenter
            spacing: 0
            Text {
                Layout.fillWidth: true      // lets the column take the row's spare width
                text: row.title
                color: Theme.textDim
                font.pixelSize: Theme.small
            }
            Row {
                Layout.alignment: Qt.AlignLeft
                spacing: 6
                Text {
                    id: amount
                    objectName: "amount_" + row.utility
                    text: row.amountText
                    color: Theme.text
                    font.pixelSize: Theme.large
                    font.bold: true
                }
                Text {
                    text: row.unit
                    color: Theme.textDim
                    font.pixelSize: Theme.small
                    anchors.baseline: amount.baseline
                }
            }
        }
        ColumnLayout {
            Layout.fillWidth: false
            Layout.alignment: Qt.AlignVCenter | Qt.AlignRight
            spacing: 0
            Text {
                objectName: "cost_" + row.utility
                Layout.alignment: Qt.AlignRight
                text: row.costText
                color: Theme.text
                font.pixelSize: Theme.large
                font.bold: true
            }
            Text {
                Layout.alignment: Qt.AlignRight
                text: row.detailText
                visible: text !== ""
                color: Theme.textDim
                font.pixelSize: 15
            }
            Row {
                objectName: "light_" + row.utility
                Layout.alignment: Qt.AlignRight
                visible: row.light !== ""
                spacing: 6
                Rectangle {
                    width: 12; height: 12; radius: 6
                    anchors.verticalCenter: parent.verticalCenter
                    color: row.light === "green" ? Theme.live
                         : row.light === "amber" ? Theme.stale : Theme.lost
                }
                Text {
                    objectName: "lightText_" + row.utility
                    text: row.lightText
                    color: Theme.textDim
                    font.pixelSize: 15
                }
            }
        }
    }
}
