import { render } from "preact";
import { App, takeInvitationFromUrl } from "./app";
import { Session } from "./auth";
import "./styles.css";

takeInvitationFromUrl();
const session = new Session("", `${location.origin}/callback`);
const root = document.getElementById("app");
if (root) render(<App session={session} />, root);
