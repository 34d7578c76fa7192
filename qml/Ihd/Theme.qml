pragma Singleton
import QtQuick

// Presentation constants only. Sizes are for a 7" 800x480 panel read at arm's length:
// body text >= 20 px, touch targets >= 64 px.
QtObject {
    readonly property color background: "#0e1621"
    readonly property color card: "#182433"
    readonly property color cardBorder: "#22324a"
    readonly property color text: "#f4f7fb"
    readonly property color textDim: "#9fb0c4"
    readonly property color electricity: "#ffc23d"
    readonly property color gas: "#5aa9ff"
    readonly property color water: "#39d0bd"
    readonly property color live: "#3ddc84"
    readonly property color stale: "#ffb020"
    readonly property color lost: "#ff5a5f"
    readonly property int radius: 18
    readonly property int gap: 12
    readonly property int small: 20
    readonly property int body: 24
    readonly property int large: 34
    readonly property int huge: 92
    function utilityColor(u) {
        return u === "gas" ? gas : u === "water" ? water : electricity
    }
}
