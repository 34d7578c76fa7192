import QtQuick
import QtQuick.Layouts
import Ihd

// One utility's "today" line: colour tab, name, amount with unit, cost.
Item {
    id: row
    property string utility
    property string title
    property string amountText
    property string unit
    property string costText
    property string detailText
    implicitHeight: 84

    Rectangle {
        id: tab
        width: 8; radius: 4
        anchors { left: parent.left; top: parent.top; bottom: parent.bottom; margins: 8 }
        color: Theme.utilityColor(row.utility)
    }
    ColumnLayout {
        anchors { left: tab.right; leftMargin: 16; verticalCenter: parent.verticalCenter }
        spacing: 0
        Text { text: row.title; color: Theme.text; font.pixelSize: Theme.body; font.bold: true }
        Text {
            text: row.detailText
            visible: text !== ""
            color: Theme.textDim
            font.pixelSize: 16
        }
    }
    Row {
        anchors { right: cost.left; rightMargin: 28; baseline: cost.baseline }
        spacing: 6
        Text {
            objectName: "amount_" + row.utility
            text: row.amountText
            color: Theme.text
            font.pixelSize: Theme.large
        }
        Text { text: row.unit; color: Theme.textDim; font.pixelSize: Theme.small }
    }
    Text {
        id: cost
        objectName: "cost_" + row.utility
        text: row.costText
        width: 120
        horizontalAlignment: Text.AlignRight
        anchors { right: parent.right; rightMargin: 8; verticalCenter: parent.verticalCenter }
        color: Theme.text
        font.pixelSize: Theme.large
        font.bold: true
    }
}
