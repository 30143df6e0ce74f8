"""The console's words in German and English; each user picks a language.

    >>> translate("en", "nav.customers")
    'Customers'
"""

from __future__ import annotations

from typing import Any

__all__ = ["TEXTS", "translate"]

_TEMPLATE_HELP = (
    "Jinja2: {{ customer.first_name }}, {{ offer.name }}, {{ track('https://…') }}, {{ unsubscribe_url }}"
)

# key: (English, German)
TEXTS: dict[str, tuple[str, str]] = {
    "app.title": ("xrm console", "xrm-Konsole"),
    "nav.overview": ("Overview", "Überblick"),
    "nav.customers": ("Customers", "Kunden"),
    "nav.segments": ("Segments and value", "Segmente und Wert"),
    "nav.campaigns": ("Campaigns", "Kampagnen"),
    "nav.network": ("Network", "Netzwerk"),
    "nav.quality": ("Data quality", "Datenqualität"),
    "nav.logout": ("Log out", "Abmelden"),
    "nav.language": ("Language", "Sprache"),
    "nav.signed_in_as": ("Signed in as {user} ({role})", "Angemeldet als {user} ({role})"),
    "role.admin": ("admin", "Administration"),
    "role.marketer": ("marketer", "Marketing"),
    "role.viewer": ("viewer", "Nur lesen"),
    # login
    "login.title": ("Log in", "Anmelden"),
    "login.username": ("User name", "Benutzername"),
    "login.password": ("Password", "Passwort"),
    "login.submit": ("Log in", "Anmelden"),
    "login.failed": ("User name or password is wrong.", "Benutzername oder Passwort ist falsch."),
    # errors
    "error.title": ("Something is not right", "Etwas stimmt nicht"),
    "error.forbidden": (
        "Your role ({role}) may not do this ({action}). Ask an administrator.",
        "Ihre Rolle ({role}) darf das nicht ({action}). Fragen Sie eine Administratorin.",
    ),
    "error.csrf": (
        "The form has expired or did not come from this console. Reload the page and try again.",
        "Das Formular ist abgelaufen oder stammt nicht aus dieser Konsole. Laden Sie die Seite "
        "neu und versuchen Sie es noch einmal.",
    ),
    "error.not_found": ("Not found", "Nicht gefunden"),
    "error.input": ("The input breaks a rule", "Die Eingabe verletzt eine Regel"),
    "error.not_built": ("Not yet built", "Noch nicht gebaut"),
    "common.none": ("none", "keine"),
    "common.not_built": ("not yet built", "noch nicht gebaut"),
    "common.back": ("Back", "Zurück"),
    "common.more": ("More", "Mehr"),
    "common.customers": ("customers", "Kunden"),
    "common.count": ("Count", "Anzahl"),
    "common.share": ("Share", "Anteil"),
    "common.reason": ("Reason", "Grund"),
    "common.source": ("Source", "Quelle"),
    "common.value": ("Value", "Wert"),
    "common.type": ("Type", "Typ"),
    "common.time": ("Time", "Zeit"),
    "common.name": ("Name", "Name"),
    "common.status": ("Status", "Status"),
    "common.done": ("Done.", "Erledigt."),
    # overview
    "overview.title": ("Overview", "Überblick"),
    "overview.customers": ("Customers (profiles)", "Kunden (Profile)"),
    "overview.scored": ("Customers with a value", "Kunden mit Wert"),
    "overview.active": ("Active (P(alive) ≥ 0.5)", "Aktiv (P(aktiv) ≥ 0,5)"),
    "overview.dropped": ("Dropped out (P(alive) < 0.5)", "Abgewandert (P(aktiv) < 0,5)"),
    "overview.clv_total": ("Total lifetime value", "Kundenwert gesamt"),
    "overview.tiers": ("Value tiers", "Wertstufen"),
    "overview.segments": ("Needs segments", "Bedarfssegmente"),
    "overview.campaigns": ("Recent campaigns", "Letzte Kampagnen"),
    "overview.alerts": ("Data-quality alerts", "Hinweise zur Datenqualität"),
    "overview.alert.rejected": ("{n} rejected rows", "{n} abgewiesene Zeilen"),
    "overview.alert.review": ("{n} matches wait for review", "{n} Zuordnungen warten auf Prüfung"),
    "overview.alert.blocked": ("{n} blocked identifiers", "{n} gesperrte Kennungen"),
    "overview.alert.none": ("No alerts.", "Keine Hinweise."),
    "overview.clv_chart": ("Lifetime value by tier", "Kundenwert nach Stufe"),
    # customers
    "customers.title": ("Customers", "Kunden"),
    "customers.search": ("Find a customer", "Kunden suchen"),
    "customers.search_hint": (
        "Name, e-mail, phone, customer number, loyalty card, profile id ...",
        "Name, E-Mail, Telefon, Kundennummer, Kundenkarte, Profil-Nr. ...",
    ),
    "customers.search_button": ("Search", "Suchen"),
    "customers.results": ("{n} customers found", "{n} Kunden gefunden"),
    "customers.no_results": ("No customer matches “{q}”.", "Kein Kunde passt zu „{q}“."),
    "customers.matched_by": ("Found by", "Gefunden über"),
    "customer.title": ("Customer {id}", "Kunde {id}"),
    "customer.golden": ("Golden record", "Goldener Datensatz"),
    "customer.golden_missing": (
        "No golden record yet: identify's golden-record step has not run on this store.",
        "Noch kein goldener Datensatz: der Schritt dazu in identify ist hier nicht gelaufen.",
    ),
    "customer.attribute": ("Attribute", "Merkmal"),
    "customer.rule": ("Rule", "Regel"),
    "customer.records": ("Source records", "Quelldatensätze"),
    "customer.identifiers": ("Identifiers", "Kennungen"),
    "customer.why": ("Why one person", "Warum eine Person"),
    "customer.history": ("Merge history", "Zusammenführungen"),
    "customer.value": ("Value", "Wert"),
    "customer.clv": ("Lifetime value", "Kundenwert (CLV)"),
    "customer.p_alive": ("P(alive)", "P(aktiv)"),
    "customer.share_of_wallet": ("Share of wallet", "Anteil am Budget"),
    "customer.tier": ("Tier", "Stufe"),
    "customer.historic_spend": ("Spend so far", "Bisheriger Umsatz"),
    "customer.expected_purchases": ("Expected purchases", "Erwartete Käufe"),
    "customer.no_value": ("No value scored for this customer.", "Für diesen Kunden ist kein Wert berechnet."),
    "customer.needs": ("Needs", "Bedarf"),
    "customer.segment": ("Segment", "Segment"),
    "customer.timeline": ("Timeline", "Verlauf"),
    "customer.timeline_more": ("Older entries", "Ältere Einträge"),
    "customer.consents": ("Consents", "Einwilligungen"),
    "customer.channel": ("Channel", "Kanal"),
    "customer.purpose": ("Purpose", "Zweck"),
    "customer.offers": ("Next best offers", "Nächste beste Angebote"),
    "customer.recommendations": ("Recommended products", "Empfohlene Produkte"),
    "customer.decide": ("Decide next best action (e-mail)", "Nächste beste Aktion bestimmen (E-Mail)"),
    "customer.decision_none": ("No eligible offer.", "Kein passendes Angebot."),
    "customer.network": ("Network", "Netzwerk"),
    "customer.neighbours": ("Neighbours", "Nachbarn"),
    "customer.gdpr": ("Privacy (GDPR)", "Datenschutz (DSGVO)"),
    "customer.export": ("Export all data (JSON)", "Alle Daten exportieren (JSON)"),
    "customer.erase": ("Erase this customer", "Diesen Kunden löschen"),
    "customer.erase_reason": ("Reason (request reference)", "Grund (Aktenzeichen der Anfrage)"),
    "customer.erased": ("Erased: {n} rows changed.", "Gelöscht: {n} Zeilen geändert."),
    "customer.key": ("Customer key", "Kundenschlüssel"),
    # segments
    "segments.title": ("Segments and value", "Segmente und Wert"),
    "segments.pyramid": ("Customer pyramid", "Kundenpyramide"),
    "segments.description": ("Description", "Beschreibung"),
    "segments.size": ("Customers", "Kunden"),
    "segments.value_share": ("Share of value", "Wertanteil"),
    "segments.clv_hist": ("Distribution of lifetime value", "Verteilung des Kundenwerts"),
    "segments.palive_hist": ("Distribution of P(alive)", "Verteilung von P(aktiv)"),
    "segments.none": (
        "No needs segments yet (run the pipeline).", "Noch keine Bedarfssegmente (Pipeline ausführen)."),
    "segments.tier_help": (
        "MVC: most valuable; MGC: most growable; BZ: below zero (costs more than it earns).",
        "MVC: wertvollste; MGC: größtes Wachstum; BZ: unter null (kostet mehr, als er einbringt).",
    ),
    # campaigns
    "campaigns.title": ("Campaigns", "Kampagnen"),
    "campaigns.new": ("New campaign", "Neue Kampagne"),
    "campaigns.drafts": ("Drafts", "Entwürfe"),
    "campaigns.launched": ("Launched", "Gestartet"),
    "campaigns.id": ("Id (letters, digits, -)", "Kennung (Buchstaben, Ziffern, -)"),
    "campaigns.name": ("Name", "Name"),
    "campaigns.channel": ("Channel", "Kanal"),
    "campaigns.purpose": ("Purpose", "Zweck"),
    "campaigns.audience": ("Audience", "Zielgruppe"),
    "campaigns.audience.email_list": (
        "Everyone who gave e-mail marketing consent", "Alle mit E-Mail-Werbeeinwilligung"),
    "campaigns.audience.tier": ("Customers of tier", "Kunden der Stufe"),
    "campaigns.audience.segment": ("Customers of segment", "Kunden des Segments"),
    "campaigns.trigger.winback": ("Trigger: P(alive) falls below", "Auslöser: P(aktiv) fällt unter"),
    "campaigns.trigger.basket": (
        "Trigger: abandoned basket (1 h)", "Auslöser: verlassener Warenkorb (1 Std.)"),
    "campaigns.subject": ("Subject", "Betreff"),
    "campaigns.text": ("Text", "Text"),
    "campaigns.template_help": (_TEMPLATE_HELP, _TEMPLATE_HELP),
    "campaigns.offer_id": ("Offer id", "Angebots-Kennung"),
    "campaigns.offer_name": ("Offer", "Angebot"),
    "campaigns.offer_value": ("Offer value (margin)", "Angebotswert (Marge)"),
    "campaigns.control_share": ("Control group share", "Anteil Kontrollgruppe"),
    "campaigns.create": ("Save draft", "Entwurf speichern"),
    "campaigns.created": ("Draft saved.", "Entwurf gespeichert."),
    "campaigns.preview": ("Preview for a customer", "Vorschau für einen Kunden"),
    "campaigns.preview_button": ("Preview", "Vorschau"),
    "campaigns.permission": ("May be sent", "Darf versendet werden"),
    "campaigns.control_group": ("In control group", "In der Kontrollgruppe"),
    "campaigns.dry_run": ("Dry run", "Probelauf"),
    "campaigns.dry_run_result": ("Dry run: {n} customers considered", "Probelauf: {n} Kunden geprüft"),
    "campaigns.launch": ("Launch", "Starten"),
    "campaigns.launched_msg": (
        "Launched: {n} messages queued.", "Gestartet: {n} Nachrichten in der Warteschlange."),
    "campaigns.outcome": ("Outcome", "Ergebnis"),
    "campaigns.results": ("Results", "Ergebnisse"),
    "campaigns.lift": ("Lift in conversion", "Zuwachs der Konversion"),
    "campaigns.lift_revenue": ("Lift in revenue per member", "Zuwachs des Umsatzes je Mitglied"),
    "campaigns.group": ("Group", "Gruppe"),
    "campaigns.members": ("Members", "Mitglieder"),
    "campaigns.conversions": ("Conversions", "Konversionen"),
    "campaigns.rate": ("Rate", "Quote"),
    "campaigns.revenue": ("Revenue", "Umsatz"),
    "campaigns.none": ("No campaigns yet.", "Noch keine Kampagnen."),
    "campaigns.kind": ("Kind", "Art"),
    "campaigns.messages": ("Messages", "Nachrichten"),
    "campaigns.schedule_note": (
        "Batch campaigns run when launched; triggered ones fire on each launch for new cases.",
        "Stapelkampagnen laufen beim Start; ausgelöste feuern bei jedem Start für neue Fälle.",
    ),
    # network
    "network.title": ("Network", "Netzwerk"),
    "network.influencers": ("Influencers (PageRank)", "Einflussreiche (PageRank)"),
    "network.communities": ("Communities", "Gemeinschaften"),
    "network.community": ("Community", "Gemeinschaft"),
    "network.members": ("Members", "Mitglieder"),
    "network.network_value": ("Network value", "Netzwerkwert"),
    "network.neighbourhood": ("Neighbourhood of a party", "Umfeld einer Partei"),
    "network.party": ("Party (profile id)", "Partei (Profil-Nr.)"),
    "network.show": ("Show", "Zeigen"),
    "network.conversations": ("Conversations", "Gespräche"),
    "network.sentiment": ("Sentiment over time", "Stimmung im Zeitverlauf"),
    "network.no_posts": ("No posts loaded.", "Keine Beiträge geladen."),
    "network.none": (
        "No network analysed yet (run the pipeline).", "Noch kein Netzwerk analysiert (Pipeline ausführen)."),
    "network.relationships": ("Relationships", "Beziehungen"),
    # quality
    "quality.title": ("Data quality", "Datenqualität"),
    "quality.rejected": ("Rejected rows", "Abgewiesene Zeilen"),
    "quality.rejected_none": ("No rejected rows.", "Keine abgewiesenen Zeilen."),
    "quality.file": ("File", "Datei"),
    "quality.line": ("Line", "Zeile"),
    "quality.field": ("Field", "Feld"),
    "quality.review": ("Identity review queue", "Prüfliste für Zuordnungen"),
    "quality.review_help": (
        "Pairs of records that may be one person. Accept joins them at the next identity run; "
        "reject keeps them apart for good.",
        "Datensatzpaare, die eine Person sein könnten. Annehmen führt sie beim nächsten "
        "Identitätslauf zusammen; Ablehnen hält sie dauerhaft getrennt.",
    ),
    "quality.review_none": ("Nothing waits for review.", "Nichts wartet auf Prüfung."),
    "quality.probability": ("Match probability", "Trefferwahrscheinlichkeit"),
    "quality.evidence": ("Evidence (weights)", "Belege (Gewichte)"),
    "quality.accept": ("Accept", "Annehmen"),
    "quality.reject": ("Reject", "Ablehnen"),
    "quality.decided": ("Decision saved: {decision}.", "Entscheidung gespeichert: {decision}."),
    "quality.review_not_built": (
        "Deciding a review item is not yet built in identify (the queue is shown read-only).",
        "Das Entscheiden von Prüffällen ist in identify noch nicht gebaut (die Liste ist nur lesbar).",
    ),
    "quality.blocked": ("Blocked identifiers", "Gesperrte Kennungen"),
    "quality.blocked_none": ("No identifier was blocked.", "Keine Kennung wurde gesperrt."),
    "quality.dropped_links": (
        "Links refused by the identity rules", "Von den Identitätsregeln abgelehnte Verknüpfungen"),
    "quality.seen": ("Seen", "Gesehen"),
}


def translate(lang: str, key: str, **values: Any) -> str:
    """The text for ``key`` in ``lang`` (``de`` or ``en``), with ``{name}`` fields filled in."""
    pair = TEXTS.get(key)
    if pair is None:
        return key  # a missing key shows itself on the page; test_i18n catches it
    text = pair[1] if lang == "de" else pair[0]
    return text.format(**values) if values else text
