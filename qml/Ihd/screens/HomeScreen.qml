import QtQuick
import QtQuick.Layouts
import Ihd
import Ihd.Backend

// The home screen: what the house is using now, and what today has cost so far.
Item {
    id: home

    ColumnLayout {
        anchors { fill: parent; margins: Theme.gap }
        spacing: Theme.gap

        RowLayout {
            Layout.fillWidth: true
            Layout.preferredHeight: 44
            Text {
                text: HouseClock.timeText
                color: Theme.text
                font.pixelSize: Theme.large
                font.bold: true
            }
            Text {
                text: HouseClock.dateText
                color: Theme.textDim
                font.pixelSize: Theme.small
                Layout.leftMargin: 12
                Layout.alignment: Qt.AlignVCenter
            }
            Item { Layout.fillWidth: true }
            LinkIndicator {}
        }

        // Only when something is wrong with the display itself: one plain sentence.
        Rectangle {
            objectName: "warningBanner"
            visible: Status.warning !== ""
            Layout.fillWidth: true
            Layout.preferredHeight: warningText.implicitHeight + 16
            radius: 8
            color: Theme.lost
            Text {
                id: warningText
                objectName: "warningText"
                anchors { fill: parent; margins: 8 }
                text: Status.warning
                color: Theme.background
                font.pixelSize: Theme.small
                wrapMode: Text.WordWrap
                verticalAlignment: Text.AlignVCenter
            }
        }

        RowLayout {
            Layout.fillWidth: true
            Layout.fillHeight: true
            spacing: Theme.gap

            Card {
                heading: qsTr("Using now")
                Layout.fillHeight: true
                Layout.preferredWidth: home.width * 0.42
                Layout.minimumWidth: 220

                DemandGauge {
                    id: gauge
                    watts: Live.watts
                    active: Live.hasDemand
                    width: Math.min(parent.width, parent.height)
                    height: width
                    anchors.centerIn: parent
                }
                Column {
                    anchors.centerIn: gauge
                    spacing: 2
                    Row {
                        anchors.horizontalCenter: parent.horizontalCenter
                        spacing: 6
                        Text {
                            objectName: "demandText"
                            text: Live.demandText
                            color: Theme.text
                            font.pixelSize: Math.min(Theme.huge, gauge.width * 0.3)
                            font.bold: true
                        }
                        Text {
                            text: "kW"
                            color: Theme.textDim
                            font.pixelSize: Theme.body
                            anchors.baseline: parent.children[0].baseline
                        }
                    }
                    Text {
                        objectName: "costPerHourText"
                        anchors.horizontalCenter: parent.horizontalCenter
                        text: Live.costPerHourText
                        color: Theme.electricity
                        font.pixelSize: Theme.body
                    }
                }
            }

            Card {
                heading: qsTr("Today")
                Layout.fillWidth: true
                Layout.fillHeight: true

                ListView {
                    anchors.fill: parent
                    interactive: false
                    model: Today
                    spacing: 4
                    delegate: TodayRow {
                        required property var model
                        utility: model.utility
                        title: model.title
                        amountText: model.amountText
                        unit: model.unit
                        costText: model.costText
                        detailText: model.detailText
                        light: model.light
                        lightText: model.lightText
                        width: ListView.view.width
                        height: (ListView.view.height - 8) / 3
                    }
                }
            }
        }
    }
}
