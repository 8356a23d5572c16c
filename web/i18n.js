// Every user-visible string of the web client, and the locale-bound formatters.
// To add a language: add a dictionary with the same keys and register it in
// `dictionaries`; `setLanguage()` picks it (default: French).

export const fr = {
  'app.name': 'Liaison',
  'app.title': 'Liaison — cahier de liaison',
  'app.titleUnread': '({count}) Liaison — cahier de liaison',
  'app.loading': 'Chargement…',
  'app.skip': 'Aller au contenu',

  'signin.title': 'Qui êtes-vous ?',
  'signin.demo': 'Démonstration — {school}',
  'signin.intro': 'Touchez votre nom pour entrer. Chaque onglet du navigateur peut être une personne différente.',
  'signin.role.director': 'Direction',
  'signin.role.teacher': 'Enseignants',
  'signin.role.guardian': 'Familles',
  'signin.codeTitle': 'Connexion à Liaison',
  'signin.error': 'Impossible de joindre le serveur. Vérifiez votre connexion puis réessayez.',
  'signin.retry': 'Réessayer',
  'signin.expired': 'Votre session a expiré. Choisissez à nouveau qui vous êtes.',
  'signin.signingIn': 'Connexion en cours…',
  'signin.signedOut': 'Vous n’êtes plus connecté·e sur cet appareil. Pour revenir, tapez votre adresse e-mail : vous recevrez un nouveau code.',
  'signin.loggedOut': 'Vous êtes déconnecté·e.',
  'signin.offline': 'Impossible de joindre Liaison pour l’instant. Vérifiez votre connexion à Internet.',

  'code.title': 'Se connecter avec son adresse e-mail',
  'code.intro': 'Pas de mot de passe : tapez votre adresse e-mail, vous recevrez un code à 6 chiffres à recopier ici.',
  'code.email': 'Votre adresse e-mail',
  'code.emailHint': 'Celle que vous avez donnée à l’école.',
  'code.emailInvalid': 'Cette adresse e-mail n’est pas complète. Exemple : prenom.nom@exemple.fr',
  'code.send': 'Recevoir un code',
  'code.sending': 'Envoi du code…',
  'code.sent': 'Si l’adresse {email} est connue de l’école, un e-mail avec un code à 6 chiffres vient de lui être envoyé. Il peut mettre une minute à arriver : pensez à regarder dans les courriers indésirables.',
  'code.code': 'Code reçu par e-mail (6 chiffres)',
  'code.codeHint': 'Le code est valable quelques minutes et une seule fois.',
  'code.submit': 'Se connecter',
  'code.resend': 'Recevoir un nouveau code',
  'code.resent': 'Un nouveau code a été envoyé. Seul le dernier code reçu fonctionne.',
  'code.change': 'Changer d’adresse e-mail',
  'code.incomplete': 'Tapez les 6 chiffres du code reçu par e-mail.',
  'code.wrong': 'Ce code n’est pas le bon. Vérifiez-le : il vous reste {count} essai.|Ce code n’est pas le bon. Vérifiez-le : il vous reste {count} essais.',
  'code.expired': 'Ce code n’est plus valable : il a expiré ou a déjà servi. Demandez un nouveau code.',
  'code.locked': 'Trop d’essais avec un code faux. Par sécurité, attendez {wait}, puis demandez un nouveau code.',
  'code.unlocked': 'Vous pouvez de nouveau demander un code.',
  'code.tooFast': 'Trop de demandes en peu de temps. Réessayez dans {wait}.',
  'code.unavailable': 'La connexion par e-mail n’est pas disponible pour le moment. Réessayez plus tard.',
  'code.minutes': '{count} minute|{count} minutes',
  'code.seconds': '{count} seconde|{count} secondes',
  'code.demoOutbox': 'Démonstration : aucun e-mail ne part vraiment, le code est dans la boîte d’envoi de la démonstration.',
  'code.demoOutboxLink': 'Ouvrir la boîte d’envoi (nouvel onglet)',

  'devices.nav': 'Mes appareils',
  'devices.title': 'Mes appareils',
  'devices.intro': 'Les appareils où vous êtes connecté·e à Liaison. Si vous n’en reconnaissez pas un, déconnectez-le.',
  'devices.loading': 'Chargement des appareils…',
  'devices.error': 'Impossible de charger la liste des appareils.',
  'devices.retry': 'Réessayer',
  'devices.this': 'cet appareil',
  'devices.since': 'Connecté depuis le {date}',
  'devices.lastSeen': 'Dernière utilisation : {when}',
  'devices.end': 'Déconnecter',
  'devices.endLabel': 'Déconnecter l’appareil « {device} »',
  'devices.ended': 'L’appareil « {device} » est déconnecté.',
  'devices.endOthers': 'Déconnecter tous mes autres appareils',
  'devices.endOthersTitle': 'Déconnecter tous vos autres appareils ?',
  'devices.endOthersBody': 'Vous resterez connecté·e seulement sur cet appareil. Sur les autres, il faudra recevoir un nouveau code pour revenir.',
  'devices.endOthersYes': 'Oui, les déconnecter',
  'devices.endedOthers': '{count} autre appareil déconnecté.|{count} autres appareils déconnectés.',
  'devices.none': 'Vous n’êtes connecté·e sur aucun autre appareil.',
  'devices.failed': 'Cela n’a pas fonctionné. Réessayez.',
  'devices.demo': 'Vous êtes connecté·e avec un accès de démonstration : il n’y a pas d’appareils à gérer.',
  'link.title': 'Se connecter en tant que {name} ?',
  'link.current': 'Cet onglet est ouvert au nom de {current}. Si vous continuez, il passera au nom de {name}.',
  'link.why': 'Un lien demande à vous connecter. Continuez seulement si vous venez de l’ouvrir vous-même, depuis l’application ou le portail de votre école.',
  'link.yes': 'Oui, me connecter',
  'link.stay': 'Non, ne rien changer',
  'link.cancel': 'Non, annuler',
  'link.invalid': 'Ce lien de connexion n’est pas valable. Personne n’a été connecté.',
  'link.expired': 'Ce lien de connexion a expiré. Rouvrez Liaison depuis l’application ou le portail de votre école.',

  'role.director': 'Direction',
  'role.teacher': 'Enseignant·e',
  'role.guardian': 'Parent',
  'header.switch': 'Changer d’utilisateur',
  'switch.title': 'Changer d’utilisateur ?',
  'switch.body': 'Vous allez quitter la session de {name} sur cet appareil. Pour revenir, il faudra choisir à nouveau qui vous êtes.',
  'switch.yes': 'Oui, changer d’utilisateur',
  'switch.no': 'Non, rester connecté·e',
  'header.signOut': 'Se déconnecter',
  'signOut.title': 'Se déconnecter de Liaison ?',
  'signOut.body': 'Vous ne recevrez plus les messages sur cet appareil. Pour revenir, il faudra taper votre adresse e-mail et recevoir un nouveau code.',
  'signOut.yes': 'Oui, me déconnecter',
  'signOut.no': 'Non, rester connecté·e',
  'header.nav': 'Navigation principale',

  'conn.connecting': 'Connexion…',
  'conn.reconnecting': 'Reconnexion…',
  'conn.reconnectingHint': 'Les messages arrivés entre-temps s’afficheront.',
  'conn.retryNow': 'Réessayer maintenant',
  'conn.forbidden': 'Cette adresse n’est pas autorisée par le serveur.',
  'conn.back': 'Connexion rétablie.',

  'nav.messages': 'Messages',
  'nav.students': 'Élèves',
  'nav.school': 'Annonces',
  'nav.staff': 'Salle des maîtres',
  'nav.board': 'Tableau de bord',
  'nav.unread': '{count} non lus',

  'urgent.banner': 'Annonce urgente non lue : {title}',
  'urgent.read': 'Lire',
  'urgent.label': 'Urgent',
  'urgent.region': 'Annonce urgente',

  'kind.announcement': 'Annonce de l’école',
  'kind.post': 'Message de la classe',
  'kind.event': 'Événement',
  'kind.homework': 'Devoirs',
  'kind.chat': 'Message',
  'kind.staff.announcement': 'Annonce de la direction',
  'kind.staff.post': 'Message de l’équipe',

  'feed.child': 'Le fil de {name}',
  'feed.childClass': 'Classe {class}',
  'feed.teachers': 'Enseignant·e : {names}',
  'feed.class': 'Classe {name}',
  'feed.school': 'Annonces de l’école',
  'feed.staff': 'Salle des maîtres',
  'feed.staffInfo': 'Entre l’équipe de l’école : les familles ne voient pas ces messages.',
  'feed.empty': 'Rien pour l’instant. Les nouvelles publications apparaîtront ici dès qu’elles seront envoyées.',
  'feed.loadingOlder': 'Chargement des messages plus anciens…',
  'feed.start': 'Début du fil',
  'feed.loadOlder': 'Afficher les messages plus anciens',
  'feed.writeToTeacher': 'Écrire à l’enseignant·e',
  'feed.writeToTeacherOf': 'Écrire à l’enseignant·e de {student}',
  'feed.classInfo': '{students} · {families}',
  'feed.studentsCount': '{count} élève|{count} élèves',
  'feed.familiesCount': '{count} famille|{count} familles',
  'feed.classes': 'Classes',

  'upcoming.title': 'À venir',
  'upcoming.none': 'Aucun événement ni devoir à venir.',
  'upcoming.show': 'À venir : devoirs et événements',
  'upcoming.count': '{count} à venir|{count} à venir',

  'msg.new': 'Nouveau',
  'msg.edited': 'modifié',
  'msg.deleted': 'Message supprimé',
  'msg.erased': 'Message supprimé à la demande de l’auteur',
  'msg.you': 'Vous',
  'msg.edit': 'Modifier',
  'msg.delete': 'Supprimer',
  'msg.confirmDelete': 'Supprimer ce message pour tout le monde ?',
  'msg.confirmYes': 'Oui, supprimer',
  'msg.cancel': 'Annuler',
  'msg.save': 'Enregistrer',
  'msg.actions': 'Actions sur le message',
  'msg.editTitle': 'Modifier le message',
  'msg.attachments': 'Pièces jointes',
  'msg.opensNew': '(s’ouvre dans un nouvel onglet)',
  'msg.readByStaff': 'Lu',
  'msg.readByStaffLong': 'Lu par l’école',
  'msg.readByFamily': 'Lu par la famille',
  'msg.event.when': 'Quand',
  'msg.event.where': 'Où',
  'msg.homework.due': 'Devoirs pour le {date}',

  'receipts.seen': 'Vu par {read}/{total} familles',
  'receipts.seenAll': 'Vu par toutes les familles ({total}/{total})',
  'receipts.readAnn': 'Lu par {read}/{total} familles',
  'receipts.family': 'Famille de {student}',
  'receipts.familyNone': 'Famille de {student} : {names}',
  'receipts.partial': 'Famille de {student} : vu par {read}, pas encore par {unread}',
  'receipts.partialAnn': 'Famille de {student} : lu par {read}, pas encore par {unread}',
  'receipts.partialTitle': 'Vu par un seul des parents',
  'receipts.partialTitleAnn': 'Lu par un seul des parents',
  'receipts.loading': 'Lectures : chargement…',
  'receipts.who': 'Qui ne l’a pas vu ?',
  'receipts.whoAnn': 'Qui ne l’a pas lu ?',
  'receipts.hide': 'Masquer la liste',
  'receipts.notSeenTitle': 'Pas encore vu',
  'receipts.notReadTitleFlat': 'Pas encore lu',
  'receipts.notReadTitle': 'Pas encore lu, par classe',
  'receipts.classLine': '{class} : {count} famille sans lecture|{class} : {count} familles sans lecture',
  'receipts.otherClass': 'Autres',
  'receipts.guardianOf': '{name} (parent de {children})',
  'receipts.error': 'Impossible de charger les lectures.',

  'compose.open': 'Nouvelle publication',
  'compose.openAnn': 'Nouvelle annonce',
  'compose.in': 'Publier dans {name}',
  'compose.kind': 'Type de publication',
  'compose.kind.post': 'Message',
  'compose.kind.event': 'Événement',
  'compose.kind.homework': 'Devoirs',
  'compose.title': 'Titre',
  'compose.titleOptional': 'Titre (facultatif)',
  'compose.text': 'Texte',
  'compose.textOptional': 'Détails (facultatif)',
  'compose.startsAt': 'Début',
  'compose.endsAt': 'Fin (facultatif)',
  'compose.place': 'Lieu (facultatif)',
  'compose.due': 'À faire pour le',
  'compose.urgent': 'Annonce urgente',
  'compose.urgentHint': 'Mise en avant chez les familles jusqu’à ce qu’elles l’aient lue, y compris le soir et le week-end.',
  'compose.submit': 'Publier',
  'compose.submitAnn': 'Envoyer l’annonce',
  'compose.sending': 'Envoi…',
  'compose.waiting': 'En attente de connexion : l’envoi partira dès le retour du réseau.',
  'compose.sent': 'Publié.',
  'schedule.quietNow': 'Heures calmes : les familles ne seront prévenues qu’à {time}.',
  'schedule.sendAt': 'Envoyer à {time}',
  'schedule.choose': 'Programmer l’envoi…',
  'schedule.pickLabel': 'Envoyer le',
  'schedule.pickSubmit': 'Programmer',
  'schedule.pickFuture': 'Choisissez une date et une heure à venir.',
  'schedule.done': 'Programmé pour {when}.',
  'schedule.listTitle': '{count} publication programmée|{count} publications programmées',
  'schedule.cancel': 'Annuler',
  'schedule.cancelled': 'Publication annulée : elle ne partira pas.',
  'schedule.tooLate': 'Trop tard : cette publication est déjà partie.',
  'prefs.nav': 'Notifications',
  'push.region': 'Notifications sur cet appareil',
  'push.offer': 'Être prévenu·e sur cet appareil quand l’école écrit, même quand Liaison est fermé.',
  'push.enable': 'Recevoir les notifications',
  'push.later': 'Plus tard',
  'push.enabling': 'Activation des notifications…',
  'push.enabled': 'Les notifications sont activées sur cet appareil.',
  'push.denied': 'Le navigateur a refusé les notifications. Vous pouvez les autoriser dans les réglages du site.',
  'push.failed': 'Les notifications n’ont pas pu être activées. Réessayez plus tard.',
  'receipts.notified': 'prévenus : {push} par notification, {email} par e-mail, {held} en attente (heures calmes), {failed} en échec',
  'prefs.title': 'Notifications',
  'prefs.intro': 'Quand vous n’êtes pas sur Liaison, comment être prévenu·e de chaque type de message. Les annonces urgentes de l’école arrivent toujours.',
  'prefs.kind.announcement': 'Annonces de l’école',
  'prefs.kind.post': 'Messages de la classe',
  'prefs.kind.event': 'Événements',
  'prefs.kind.homework': 'Devoirs',
  'prefs.kind.chat': 'Conversations',
  'prefs.immediately': 'Immédiatement',
  'prefs.digest': 'Résumé par e-mail',
  'prefs.off': 'Jamais',
  'prefs.showContent': 'Afficher le contenu sur l’écran verrouillé',
  'prefs.showContentHint': 'Sinon, seulement « Nouveau message de … ».',
  'prefs.digestEmail': 'Recevoir les résumés par e-mail',
  'prefs.save': 'Enregistrer',
  'prefs.saved': 'Préférences enregistrées.',
  'prefs.loading': 'Chargement…',
  'prefs.error': 'Les préférences n’ont pas pu être chargées. Réessayez dans un moment.',
  'prefs.saveError': 'Les préférences n’ont pas pu être enregistrées. Réessayez dans un moment.',
  'quiet.title': 'Heures calmes de l’école',
  'quiet.intro': 'Pas de notification aux familles pendant ces heures, sauf annonce urgente : elles partent à la fin.',
  'quiet.start': 'Début',
  'quiet.end': 'Fin',
  'quiet.weekends': 'Tout le samedi et le dimanche',
  'quiet.holidays': 'Jours de vacances (un par ligne, AAAA-MM-JJ)',
  'quiet.save': 'Enregistrer les heures calmes',
  'quiet.saved': 'Heures calmes enregistrées.',
  'quiet.invalid': 'Vérifiez les heures et les dates de vacances : une date par ligne, sous la forme AAAA-MM-JJ (2026-12-21).',

  'error.forbidden': 'Vous n’avez pas le droit de faire cela ici.',
  'error.too_large': 'Le message est trop long.',
  'error.bad_request': 'Le message n’a pas pu être envoyé : vérifiez les champs.',
  'error.rate_limited': 'Trop d’envois en peu de temps. Réessayez dans un instant.',
  'error.not_found': 'Ce message n’existe plus.',
  'error.generic': 'Une erreur est survenue. Réessayez.',
  'error.closed': 'Cette conversation est fermée : vous ne pouvez plus y écrire.',
  'error.timeout': 'Le serveur ne répond pas. Réessayez.',

  'chat.list': 'Conversations',
  'chat.noneParent': 'Aucune conversation pour l’instant. Utilisez « Écrire à l’enseignant·e » depuis le fil de votre enfant.',
  'chat.noneStaff': 'Aucune conversation pour l’instant. Ouvrez-en une depuis la liste des élèves.',
  'chat.pick': 'Choisissez une conversation.',
  'chat.back': 'Conversations',
  'chat.titleParent': '{staff} — à propos de {student}',
  'chat.titleParentFamily': '{staff} — à propos de {student}, avec toute la famille',
  'chat.titleStaff': 'Famille de {student}',
  'chat.titlePrivate': '{guardian} — à propos de {student}',
  'chat.closed': 'Conversation fermée',
  'chat.closedStaff': 'Personne ne peut plus y écrire ; les messages restent lisibles. Vous pouvez la rouvrir à tout moment.',
  'chat.closedParent': 'L’école a fermé cette conversation : vous ne pouvez plus y écrire, mais vous pouvez relire les messages. Pour une nouvelle question, contactez l’école.',
  'chat.close': 'Fermer la conversation',
  'chat.closeConfirm': 'Fermer cette conversation ? Personne ne pourra plus y écrire jusqu’à ce que vous la rouvriez.',
  'chat.closeYes': 'Oui, fermer',
  'chat.reopen': 'Rouvrir la conversation',
  'chat.closedToast': 'Conversation fermée.',
  'chat.reopenedToast': 'Conversation rouverte.',
  'chat.deleteOther': 'Supprimer ce message',
  'chat.members': 'Avec {names}',
  'chat.label': 'Votre message',
  'chat.placeholder': 'Écrire un message…',
  'chat.send': 'Envoyer',
  'chat.typing': '{name} écrit…',
  'chat.empty': 'Écrivez le premier message.',
  'chat.editLabel': 'Modifier votre message',
  'chat.unknown': 'Conversation',
  'chat.lastYou': 'Vous : {text}',
  'chat.startAbout': 'Écrire à l’enseignant·e de {student}',
  'chat.opening': 'Ouverture de la conversation…',

  'students.title': 'Élèves et familles',
  'students.class': 'Classe {name}',
  'students.guardians': 'Parents : {names}',
  'students.noGuardian': 'Aucun parent enregistré',
  'students.write': 'Écrire à la famille de {name}',
  'students.open': 'Voir la conversation avec la famille de {name}',
  'students.writeOne': 'Écrire à {guardian} seulement',
  'students.openOne': 'Conversation avec {guardian} seulement',

  'upload.camera': 'Photo',
  'upload.files': 'Photo ou document',
  'upload.sending': 'Envoi…',
  'upload.ready': 'Prêt',
  'upload.remove': 'Retirer {name}',
  'upload.tooLarge': 'Fichier trop lourd (photos : 20 Mo, PDF : 50 Mo).',
  'upload.notAccepted': 'Ce fichier n’est pas une photo (JPEG, PNG, WebP, HEIC) ni un PDF.',
  'upload.failed': 'L’envoi a échoué. Réessayez.',
  'upload.wait': 'Attendez la fin de l’envoi des fichiers.',
  'upload.removeFailed': 'Retirez « {name} », qui n’a pas pu être envoyé.',
  'upload.whoAppears': 'Quels enfants voit-on sur les photos ?',
  'upload.nobody': 'Aucun enfant n’apparaît',
  'upload.noConsent': 'accord manquant',
  'upload.consentHint': 'Une photo ne peut être publiée que si les parents de chaque enfant visible ont donné leur accord (droit à l’image).',
  'upload.sayWho': 'Cochez les enfants visibles sur les photos, ou « Aucun enfant n’apparaît ».',
  'upload.consentMissing': 'Publication refusée : il manque l’accord des parents pour {names} (droit à l’image).',
  'upload.hidden': 'Photo masquée : un parent a retiré son accord.',
  'upload.hiddenForOthers': 'Masquée pour les autres familles (accord retiré).',
  'upload.open': 'Agrandir la photo {name}',
  'upload.photo': 'Photo',
  'upload.close': 'Fermer',
  'upload.unavailable': 'Fichier indisponible',
  'upload.kb': '{n} Ko',
  'upload.mb': '{n} Mo',

  'consent.nav': 'Droit à l’image',
  'consent.title': 'Droit à l’image',
  'consent.intro': 'Acceptez-vous que les photos de classe où apparaît votre enfant soient montrées aux autres familles ? Vous pouvez changer d’avis à tout moment : les photos déjà publiées sont alors masquées.',
  'consent.none': 'Aucun enfant rattaché à votre compte.',
  'consent.granted': 'J’accepte',
  'consent.refused': 'Je refuse',
  'consent.not_asked': 'Pas encore répondu',
  'consent.saving': 'Enregistrement…',
  'consent.savedGranted': 'Accord enregistré pour {name}.',
  'consent.savedRefused': 'Refus enregistré pour {name} : ses photos sont masquées.',

  'live.post': 'Nouvelle publication de {name} : {text}',
  'live.chat': 'Nouveau message de {name} : {text}',
  'live.urgent': 'Annonce urgente de {name} : {text}',

  'time.now': 'à l’instant',
  'time.minutes': 'il y a {count} min',
  'time.yesterday': 'hier, {time}',
  'time.range': '{start} – {end}',
  'time.sep': ', ',

  'board.title': 'Tableau de bord',
  'retention.title': 'Année scolaire et conservation des données',
  'retention.ends': 'L’année scolaire se termine le {date} : les classes passeront alors en lecture seule.',
  'retention.frozen': 'L’année scolaire est terminée depuis le {date} : les classes sont en lecture seule.',
  'retention.purge': 'Leurs messages seront supprimés le {date}.',
  'retention.leavers': '{count} personne partie sera effacée à partir du {date}.|{count} personnes parties seront effacées à partir du {date}.',
  'board.introSchool': '{school} : les familles que l’école touche, classe par classe, et celles à appeler.',
  'board.introClass': 'Les familles de votre classe : qui lit, qui n’est pas joignable, qui appeler.',
  'board.error': 'Le tableau de bord n’a pas pu être chargé. Vérifiez votre connexion puis réessayez.',
  'board.school': 'L’école en un coup d’œil',
  'board.perClass': 'Chiffres par classe',
  'board.class': 'Classe',
  'board.families': 'Familles',
  'board.neverSignedIn': 'Jamais connectées',
  'board.notNotifiable': 'Non joignables',
  'board.inactive': 'Sans lecture depuis 30 jours',
  'board.seen': 'Vu (10 dernières publications)',
  'board.seenValue': 'médiane {median}, au plus bas {lowest}',
  'board.postsThisWeek': 'Publications (7 jours)',
  'board.firstRead': 'Délai de première lecture',
  'board.seconds': '{count} s|{count} s',
  'board.minutes': '{count} min|{count} min',
  'board.hours': '{count} h|{count} h',
  'board.days': '{count} jour|{count} jours',
  'board.lastPosts': 'Les {count} dernières publications|Les {count} dernières publications',
  'board.seenBy': 'vue par {count}/{total} familles|vue par {count}/{total} familles',
  'board.unreadAnnouncements': 'Annonces pas encore lues par toutes les familles',
  'board.allRead': 'Toutes les annonces des 30 derniers jours ont été vues par chaque famille.',
  'board.urgent': 'Urgent',
  'board.remind': 'Relancer par e-mail',
  'board.reminded': 'Relance envoyée à {count} responsable.|Relance envoyée à {count} responsables.',
  'board.remindedToday': 'Relance envoyée aujourd’hui',
  'board.alreadyReminded': 'Ces familles ont déjà été relancées aujourd’hui pour cette annonce. Réessayez demain.',
  'board.quietHours': 'Ce sont les heures calmes de l’école : pas d’e-mail aux familles avant {when}. Relancez à ce moment-là.',
  'board.remindFailed': 'La relance n’a pas pu être envoyée. Réessayez dans un moment.',
  'board.lists': 'Les familles à appeler',
  'board.list.never_signed_in': 'Familles jamais connectées',
  'board.list.not_notifiable': 'Familles non joignables',
  'board.list.inactive': 'Familles sans lecture depuis 30 jours',
  'board.listHint.never_signed_in': 'Aucun de leurs responsables ne s’est jamais connecté.',
  'board.listHint.not_notifiable': 'Au moins un foyer ne reçoit rien : ni appareil connecté, ni adresse e-mail.',
  'board.listHint.inactive': 'Aucun de leurs responsables n’a rien lu depuis 30 jours.',
  'board.export': 'Exporter (CSV)',
  'board.exported': 'Fichier {name} enregistré.',
  'board.exportFailed': 'L’export n’a pas pu être fait. Réessayez dans un moment.',
  'board.none': 'Aucune famille dans cette liste.',
  'board.noEmail': 'pas d’e-mail',
  'board.unreachable': 'non joignable',
  'board.openChat': 'Ouvrir une conversation',
};

const dictionaries = { fr };
let lang = 'fr';
let dict = fr;
let locale = 'fr-FR';
let plural = new Intl.PluralRules(locale);

export function setLanguage(code) {
  if (!dictionaries[code]) return;
  lang = code;
  dict = dictionaries[code];
  locale = code === 'fr' ? 'fr-FR' : code;
  plural = new Intl.PluralRules(locale);
  document.documentElement.lang = code;
}
export const language = () => lang;

// t('key', {name: 'x'}) — "{name}" placeholders; "one|other" plural forms chosen by params.count.
export function t(key, params = {}) {
  let s = dict[key] ?? fr[key];
  if (s === undefined) {
    console.warn('i18n: missing key', key);
    return key;
  }
  if (s.includes('|')) {
    const [one, other] = s.split('|');
    s = plural.select(Number(params.count ?? 0)) === 'one' ? one : other;
  }
  s = s.replace(/\b([Dd]e) \{(\w+)\}/g, (m, w, k) => (k in params ? elide(w, params[k]) : m));
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
}

// French elision: "de Hugo" → "d’Hugo", "de Inès" → "d’Inès", but "de Léa", "de Yanis".
// Before a vowel, a mute h (first names with h are nearly all mute: Hugo, Hélène) or a
// y sounding as a vowel (Yves, Yvonne).
export function elide(word, name) {
  const n = String(name ?? '').trim();
  if (lang !== 'fr') return `${word} ${n}`;
  const vowel = /^(?:[aeiouàâäéèêëîïôöùûüœæh]|y[^aeiouyàâäéèêëîïôöùûü])/i.test(n.normalize('NFC'));
  return vowel ? `${word.slice(0, -1)}’${n}` : `${word} ${n}`;
}

// "1 décembre" → "1er décembre" (and "1 déc." → "1er déc.").
const FIRST = /(^|[^\d])1 (?=(?:janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc))/g;
export function firstOfMonth(s) {
  return lang === 'fr' ? s.replace(FIRST, (m, before) => `${before}1er `) : s;
}

// Lists: "Marie, Jean et Paul".
export function list(items) {
  return new Intl.ListFormat(locale, { style: 'long', type: 'conjunction' }).format(items);
}

const fmt = (opts) => new Intl.DateTimeFormat(locale, opts);
const sameDay = (a, b) => a.toDateString() === b.toDateString();

export function formatClock(date) {
  return fmt({ hour: '2-digit', minute: '2-digit' }).format(date);
}

// A message's time: "à l'instant", "il y a 5 min", "14:05", "hier, 14:05", "lundi 3 déc., 14:05".
export function formatTs(ts, now = Date.now()) {
  const d = new Date(ts);
  const diff = now - ts;
  if (diff >= -60_000 && diff < 60_000) return t('time.now');
  if (diff > 0 && diff < 3_600_000) return t('time.minutes', { count: Math.floor(diff / 60_000) });
  const today = new Date(now);
  if (sameDay(d, today)) return formatClock(d);
  const yesterday = new Date(now - 86_400_000);
  if (sameDay(d, yesterday)) return t('time.yesterday', { time: formatClock(d) });
  const opts = { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  if (d.getFullYear() !== today.getFullYear()) opts.year = 'numeric';
  return firstOfMonth(fmt(opts).format(d));
}

export function formatFull(ts) {
  return firstOfMonth(fmt({ dateStyle: 'full', timeStyle: 'short' }).format(new Date(ts)));
}

// "jeudi 4 décembre, 14:00 – 16:00"
export function formatEvent(startsAt, endsAt) {
  const s = new Date(startsAt);
  if (Number.isNaN(s.getTime())) return String(startsAt || '');
  const day = fmt({ weekday: 'long', day: 'numeric', month: 'long' });
  const start = day.format(s) + t('time.sep') + formatClock(s);
  if (!endsAt) return firstOfMonth(start);
  const e = new Date(endsAt);
  if (Number.isNaN(e.getTime())) return start;
  const end = sameDay(s, e) ? formatClock(e) : day.format(e) + t('time.sep') + formatClock(e);
  return firstOfMonth(t('time.range', { start, end }));
}

// "jeudi 4 décembre" from "2025-12-04"
export function formatDay(isoDate) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(isoDate || '');
  if (!m) return String(isoDate || '');
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return firstOfMonth(fmt({ weekday: 'long', day: 'numeric', month: 'long' }).format(d));
}
